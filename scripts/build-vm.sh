#!/usr/bin/env bash
# Builds what a utility VM boots, from Debian packages only, into build/vm/ (idempotent; rebuilt when an input is newer):
#   vmlinux        the guest kernel uncompressed from the cloud kernel's bzImage (QEMU boots it directly through PVH)
#   silo-agent     the static guest agent (C, static glibc)
#   silo-vm-nothp  a host-side exec wrapper that starts QEMU with transparent huge pages off (src/compute/vm/nothp.c)
#   silo-vm-trimlater.so  preloaded into QEMU by that wrapper: its malloc_trim calls batched (src/compute/vm/trimlater.c)
#   initramfs.cpio the agent as /init, the kernel modules it loads (in order; virtiofs for bind mounts) and busybox-static for `ip`
set -euo pipefail
cd "$(dirname "$0")/.."
out=build/vm
mkdir -p "$out"

kimg=$(ls -1 /boot/vmlinuz-*-cloud-amd64 2>/dev/null | sort -V | tail -n1 || true)
if [ -z "$kimg" ]; then echo "silo setup: no cloud guest kernel (apt-get install linux-image-cloud-amd64)" >&2; exit 1; fi
kver=${kimg#/boot/vmlinuz-}

# The bzImage header says where its compressed payload is (0x248 offset, 0x24c length, after the setup sectors).
if [ ! -s "$out/vmlinux" ] || [ "$kimg" -nt "$out/vmlinux" ] || [ "$(cat "$out/vmlinux.version" 2>/dev/null)" != "$kver" ]; then
  setup=$(( ($(od -An -tu1 -j 0x1f1 -N1 "$kimg") + 1) * 512 ))
  poff=$(od -An -tu4 -j 0x248 -N4 "$kimg" | tr -d ' ')
  plen=$(od -An -tu4 -j 0x24c -N4 "$kimg" | tr -d ' ')
  tmp="$out/vmlinux.tmp.$$"
  # lz4's legacy frame carries no length: the payload ends with the image size, which lz4 reports as trailing garbage.
  tail -c +$((setup + poff + 1)) "$kimg" | head -c "$plen" | lz4 -dc 2>/dev/null > "$tmp" || true
  if [ "$(head -c4 "$tmp" | od -An -tx1 | tr -d ' ')" != "7f454c46" ]; then rm -f "$tmp"; echo "silo setup: cannot unpack $kimg (expected an lz4 ELF payload)" >&2; exit 1; fi
  mv "$tmp" "$out/vmlinux"; echo "$kver" > "$out/vmlinux.version"
fi

src=src/compute/vm/agent/agent.c # it includes fs.c
if [ ! -x "$out/silo-agent" ] || [ "$src" -nt "$out/silo-agent" ] || [ src/compute/vm/agent/fs.c -nt "$out/silo-agent" ]; then
  gcc -static -Os -s -Wall -Wextra -Werror -Wno-format-truncation -o "$out/silo-agent.tmp" "$src"
  mv "$out/silo-agent.tmp" "$out/silo-agent"
fi

if [ ! -x "$out/silo-vm-nothp" ] || [ src/compute/vm/nothp.c -nt "$out/silo-vm-nothp" ]; then
  gcc -O2 -s -Wall -Wextra -Werror -o "$out/silo-vm-nothp.tmp" src/compute/vm/nothp.c
  mv "$out/silo-vm-nothp.tmp" "$out/silo-vm-nothp"
fi
if [ ! -s "$out/silo-vm-trimlater.so" ] || [ src/compute/vm/trimlater.c -nt "$out/silo-vm-trimlater.so" ]; then
  gcc -O2 -s -shared -fPIC -Wall -Wextra -Werror -o "$out/silo-vm-trimlater.so.tmp" src/compute/vm/trimlater.c -pthread -ldl
  mv "$out/silo-vm-trimlater.so.tmp" "$out/silo-vm-trimlater.so"
fi

if [ ! -s "$out/initramfs.cpio" ] || [ "$out/silo-agent" -nt "$out/initramfs.cpio" ] || [ "$out/vmlinux" -nt "$out/initramfs.cpio" ] || [ "$0" -nt "$out/initramfs.cpio" ]; then
  root=$(mktemp -d)
  trap 'rm -rf "$root"' EXIT
  mkdir -p "$root"/{bin,dev,proc,sys,run,mnt,lib/modules,etc}
  cp "$out/silo-agent" "$root/init"
  cp /bin/busybox "$root/bin/busybox"
  : > "$root/lib/modules/order"
  for m in virtio_pci virtio_console virtio_blk virtio_net overlay virtiofs; do
    modprobe --show-depends -S "$kver" "$m" | awk '$1=="insmod"{print $2}'
  done | awk '!seen[$0]++' | while read -r ko; do
    cp "$ko" "$root/lib/modules/"; basename "$ko" >> "$root/lib/modules/order"
  done
  (cd "$root" && find . -print0 | sort -z | cpio --null -o -H newc --owner 0:0 --quiet) > "$out/initramfs.cpio.tmp"
  mv "$out/initramfs.cpio.tmp" "$out/initramfs.cpio"
fi
