// The options of `silo run` and `silo create`, apart from the program (the fast path's test parses with them).

import { Option, type Command } from 'commander';

const many = (v: string, prev?: string[]) => [...(prev ?? []), v];

/** The options and arguments run and create share. */
export function createOptions(c: Command): Command {
  return c
    .helpOption('--help', 'display help for command')
    .argument('<image>', 'image name or id')
    .argument('[command...]', 'command and arguments (replace the image CMD)')
    .passThroughOptions()
    .option('-i, --interactive', 'keep STDIN open')
    .option('-t, --tty', 'allocate a pseudo-TTY')
    .option('--rm', 'remove the container when it exits')
    .option('--restart <policy>', 'no, always, unless-stopped or on-failure[:max-retries]')
    .option('--init', 'run an init inside the container that forwards signals and reaps processes')
    .option('--name <name>', 'assign a name to the container')
    .option('-e, --env <KEY=VALUE>', 'set an environment variable (KEY alone: take it from this environment)', many)
    .option('--env-file <file>', 'read environment variables from a file', many)
    .option('-w, --workdir <dir>', 'working directory inside the container')
    .option('-u, --user <user>', 'user (name|uid[:group|gid])')
    .option('-h, --hostname <name>', 'container host name')
    .option('-v, --volume <src:ctr[:opts]>', 'bind mount a host directory (absolute path) or a named volume (made if missing, filled from the image unless nocopy); opts: ro, rw, nocopy', many)
    .option('-m, --memory <bytes>', 'memory limit (b, k, m, g suffixes: 64m)')
    .option('--cpus <number>', 'number of CPUs (decimal: 0.5)')
    .option('--pids-limit <n>', 'process count limit (-1: unlimited)')
    .option('--isolation <mode>', 'isolation: process (the default) or vm (a utility VM with its own kernel)')
    .option('--vm-kernel <package>', 'vm isolation: the Debian kernel package the utility VM boots (e.g. linux-image-6.1.0-NN-cloud-amd64)')
    .option('--storage-size <bytes>', 'size of the writable layer (default: the daemon default, 10 GiB)')
    .option('--storage-opt <size=bytes>', 'storage option (size=...)', many)
    .option('--entrypoint <cmd>', 'override the image ENTRYPOINT ("" clears it)')
    .option('-l, --label <key=value>', 'set a label', many)
    .option('--stop-signal <signal>', 'signal to stop the container')
    .option('--stop-timeout <seconds>', 'timeout before stop kills the container')
    .option('--network <name>', 'connect the container to a network ("none": loopback only; default: the default nat network)')
    .addOption(new Option('--net <name>', 'same as --network').hideHelp())
    .option('-p, --publish <[hostip:][hostPort:]containerPort[/proto]>', "publish a container's port on the host (tcp or udp; without a host port, a free one: see silo port)", many)
    .option('--ip <address>', "the container's IPv4 address on its network")
    .option('--network-alias <name>', 'another name the container has on its network', many)
    .option('--mac-address <mac>', "the container's MAC address on its network")
    .option('--dns <ip>', 'a DNS server for /etc/resolv.conf', many)
    .option('--dns-search <domain>', 'a DNS search domain', many)
    .option('--dns-option <option>', 'a resolv.conf option (ndots:2)', many)
    .option('--add-host <name:ip>', 'a line of /etc/hosts', many)
    .option('--pid <mode>', 'PID namespace: host or container:<name|id>')
    .option('--ipc <mode>', 'IPC namespace: host or container:<name|id>')
    .option('--uts <mode>', 'UTS namespace: host')
    .option('--read-only', 'mount the root filesystem read-only')
    .option('--privileged', "every capability the daemon holds, all host devices, no seccomp, no masked paths")
    .option('--cap-add <cap>', 'add a capability (NET_ADMIN, ALL)', many)
    .option('--cap-drop <cap>', 'drop a capability (CHOWN, ALL)', many)
    .option('--security-opt <opt>', 'no-new-privileges[:true|false], seccomp=unconfined or seccomp=/path/profile.json', many)
    .option('--group-add <group>', 'another group for the process (name or gid)', many)
    .option('--tmpfs <path[:opts]>', 'a tmpfs mount (opts: size=64m,mode=1777,exec...)', many)
    .option('--device <host[:ctr[:rwm]]>', 'a host device in the container', many)
    .option('--device-read-bps <dev:rate>', 'limit reads from a host block device, bytes a second (e.g. /dev/sda:1mb)', many)
    .option('--device-write-bps <dev:rate>', 'limit writes to a host block device, bytes a second', many)
    .option('--device-read-iops <dev:rate>', 'limit reads from a host block device, operations a second', many)
    .option('--device-write-iops <dev:rate>', 'limit writes to a host block device, operations a second', many)
    .option('--ulimit <name=soft[:hard]>', 'a resource limit (nproc=100:200)', many)
    .option('--shm-size <bytes>', 'size of /dev/shm (default 64m)')
    .option('--cpuset-cpus <cpus>', 'CPUs the container may run on (0-1,3)')
    .option('--memory-swappiness <0-100>', 'memory swappiness')
    .option('--domainname <name>', "the container's NIS domain name")
    .option('--memory-reservation <bytes>', 'memory soft limit, reclaimed down to when the host runs short (e.g. 32m)')
    .option('--sysctl <key=value>', 'a namespaced kernel parameter (net.*, kernel.shm*, ...)', many)
    .option('--oom-score-adj <n>', "the OOM killer's preference, -1000..1000 (not below the daemon's own)")
    .option('--log-driver <driver>', 'file (default; json-file and local are the same) or none')
    .option('--log-opt <key=value>', 'max-size (rotate at this size, e.g. 10m; -1 no limit) or max-file (files kept)', many);
}

/** `silo run`'s: create's and its own. */
export function runOptions(c: Command): Command {
  return createOptions(c)
    .option('-d, --detach', 'run in the background and print the container id')
    .option('--sig-proxy <bool>', 'proxy received signals to the process (non-tty only)', 'true');
}
