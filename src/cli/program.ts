// `silo` with commander: registers the verbs; each verb's code is imported only when it runs (start-up is part of
// every `silo run`). main.ts comes first and runs the simplest `silo run`s itself.

import { Command, CommanderError, Option } from 'commander';
import type { RunFlags } from './commands/run.js';
import type { ExecFlags } from './commands/exec.js';
import { CLI_VERSION, describe } from './errors.js';
import { createOptions, runOptions } from './run-options.js';

type Opts = Record<string, any>; // eslint-disable-line @typescript-eslint/no-explicit-any

let exitCode = 0;
let stayAlive = false;
const many = (v: string, prev?: string[]) => [...(prev ?? []), v];
const act =
  <A extends unknown[]>(f: (...a: A) => Promise<number | void>) =>
  async (...a: A) => {
    const c = await f(...a);
    if (typeof c === 'number') exitCode = c;
  };

const program = new Command('silo')
  .description('Silo: run Linux containers (docker-compatible command line)')
  .version(`Silo version ${CLI_VERSION}`, '-v, --version', 'print the version and quit')
  .option('-H, --host <url>', 'daemon socket to connect to, unix:///path (env SILO_HOST)')
  .enablePositionalOptions()
  .showSuggestionAfterError(true)
  .exitOverride()
  .configureOutput({
    outputError: (str, write) => write(`silo: ${str.trim().replace(/^error: /, '').replace(/\s*\n\s*/g, ' ')}\n`),
  })
  .hook('preAction', () => {
    const h = program.opts().host as string | undefined;
    if (h) process.env.SILO_HOST = h;
  });

type Verb = readonly [name: string, description: string, define: (c: Command) => unknown];

const verbs: Verb[] = [
  [
    'run',
    'create and run a new container from an image',
    (c) => runOptions(c).action(act((image: string, cmd: string[], o: RunFlags) => import('./commands/run.js').then((m) => m.run(image, cmd, o)))),
  ],
  [
    'create',
    'create a new container',
    (c) =>
      createOptions(c)
        .action(act((image: string, cmd: string[], o: RunFlags) => import('./commands/run.js').then((m) => m.create(image, cmd, o)))),
  ],
  [
    'start',
    'start one or more stopped containers',
    (c) =>
      c
        .argument('<container...>')
        .option('-a, --attach', 'attach STDOUT/STDERR and forward signals')
        .option('-i, --interactive', "attach the container's STDIN")
        .action(act((refs: string[], o: Opts) => import('./commands/start.js').then((m) => m.start(refs, o)))),
  ],
  [
    'exec',
    'run a command in a running container',
    (c) =>
      c
        .argument('<container>')
        .argument('<command...>')
        .passThroughOptions()
        .option('-d, --detach', 'run the command in the background')
        .option('-i, --interactive', 'keep STDIN open')
        .option('-t, --tty', 'allocate a pseudo-TTY')
        .option('-e, --env <KEY=VALUE>', 'set an environment variable', many)
        .option('--env-file <file>', 'read environment variables from a file', many)
        .option('-w, --workdir <dir>', 'working directory inside the container')
        .option('-u, --user <user>', 'user (name|uid[:group|gid])')
        .action(act((ref: string, cmd: string[], o: ExecFlags) => import('./commands/exec.js').then((m) => m.exec(ref, cmd, o)))),
  ],
  [
    'ps',
    'list containers',
    (c) =>
      c
        .option('-a, --all', 'show all containers (default: running ones)')
        .option('-f, --filter <filter>', 'KEY=VALUE: id, name, label, status, exited, ancestor, before, since, network, volume, publish, isolation', many)
        .option('-n, --last <n>', 'show the n containers created last (all states)')
        .option('-l, --latest', 'show the container created last (all states)')
        .option('-q, --quiet', 'only display ids')
        .option('--no-trunc', "don't truncate output")
        .option('--format <format>', 'json, or a Go-style template like {{.ID}}')
        .action(act((o: Opts) => import('./commands/ps.js').then((m) => m.ps(o)))),
  ],
  [
    'logs',
    'fetch the logs of a container',
    (c) =>
      c
        .argument('<container>')
        .option('-f, --follow', 'follow log output')
        .option('-n, --tail <n>', 'number of lines to show from the end ("all")')
        .option('-t, --timestamps', 'show timestamps')
        .option('--since <time>', 'show logs since a timestamp (RFC3339) or a relative time (42m)')
        .action(act((ref: string, o: Opts) => import('./commands/logs.js').then((m) => m.logs(ref, o)))),
  ],
  [
    'stop',
    'stop one or more running containers',
    (c) =>
      c
        .argument('<container...>')
        .option('-t, --time <seconds>', 'seconds to wait before killing it')
        .option('-s, --signal <signal>', 'signal to send')
        .action(act((refs: string[], o: Opts) => import('./commands/lifecycle.js').then((m) => m.stop(refs, o)))),
  ],
  [
    'restart',
    'restart one or more containers',
    (c) =>
      c
        .argument('<container...>')
        .option('-t, --time <seconds>', 'seconds to wait for it to stop before killing it')
        .option('-s, --signal <signal>', 'signal to stop it with')
        .action(act((refs: string[], o: Opts) => import('./commands/lifecycle.js').then((m) => m.restart(refs, o)))),
  ],
  [
    'rename',
    'rename a container',
    (c) =>
      c
        .argument('<container>')
        .argument('<new-name>')
        .action(act((ref: string, name: string) => import('./commands/lifecycle.js').then((m) => m.rename(ref, name)))),
  ],
  [
    'attach',
    "attach this terminal's input and output to a running container",
    (c) =>
      c
        .argument('<container>')
        .option('--no-stdin', 'do not attach STDIN')
        .option('--no-sig-proxy', 'do not proxy received signals to the container')
        .action(act((ref: string, o: Opts) => import('./commands/start.js').then((m) => m.attach(ref, o)))),
  ],
  [
    'events',
    "the daemon's events as they happen",
    (c) =>
      c
        .option('--since <time>', 'show events since a time (RFC 3339, Unix seconds, or a duration ago such as 10m)')
        .option('--until <time>', 'stop at a time')
        .option('-f, --filter <filter>', 'type=container|image|network|volume|daemon, event=<action>, container=<name or id>', many)
        .option('--format <format>', 'json')
        .action(act((o: Opts) => import('./commands/events.js').then((m) => m.events(o)))),
  ],
  [
    'kill',
    'kill one or more running containers',
    (c) =>
      c
        .argument('<container...>')
        .option('-s, --signal <signal>', 'signal to send', 'KILL')
        .action(act((refs: string[], o: Opts) => import('./commands/lifecycle.js').then((m) => m.kill(refs, o)))),
  ],
  [
    'rm',
    'remove one or more containers',
    (c) =>
      c
        .argument('<container...>')
        .option('-f, --force', 'force the removal of a running container')
        .option('-v, --volumes', 'ignored (the silo CLI makes no anonymous volumes; named ones stay)')
        .action(act((refs: string[], o: Opts) => import('./commands/lifecycle.js').then((m) => m.rm(refs, o)))),
  ],
  ...(
    [
      ['pause', 'pause all processes within one or more containers'],
      ['unpause', 'unpause all processes within one or more containers'],
      ['wait', 'block until one or more containers stop, then print their exit codes'],
    ] as const
  ).map(
    ([verb, desc]): Verb => [
      verb,
      desc,
      (c) => c.argument('<container...>').action(act((refs: string[]) => import('./commands/lifecycle.js').then((m) => m[verb](refs)))),
    ],
  ),
  [
    'inspect',
    'return low-level information on containers, images or networks',
    (c) =>
      c
        .argument('<name...>')
        .option('--type <type>', 'container, image or network')
        .option('-f, --format <template>', 'format the output with a Go-style template')
        .action(act((refs: string[], o: Opts) => import('./commands/inspect.js').then((m) => m.inspect(refs, o)))),
  ],
  [
    'network',
    'manage networks',
    (c) => {
      const net = (sub: string, desc: string) => c.command(sub).description(desc).helpOption('--help', 'display help for command');
      net('create', 'create a network (prints its id)')
        .argument('<name>')
        .option('-d, --driver <driver>', 'nat (default), internal or l2bridge')
        .option('--subnet <cidr>', 'subnet in CIDR form (default for nat/internal: a free /16)', many)
        .option('--gateway <ip>', 'gateway of the subnet given in the same position', many)
        .option('-o, --opt <key=value>', 'driver option: parent=IFACE (l2bridge)', many)
        .option('--interface <iface>', 'the host interface an l2bridge network bridges (same as -o parent=IFACE)')
        .option('--outbound-nat-exception <cidr>', 'destination reached without masquerading (nat)', many)
        .option('--ipv6', 'dual-stack: an IPv6 subnet (a --subnet, or a random unique-local /64) beside the IPv4 one')
        .action(act((name: string, o: Opts) => import('./commands/network.js').then((m) => m.create(name, o))));
      net('ls', 'list networks')
        .alias('list')
        .option('-q, --quiet', 'only display network ids')
        .option('--no-trunc', "don't truncate output")
        .option('--format <format>', 'json, or a Go-style template like {{.Name}}')
        .action(act((o: Opts) => import('./commands/network.js').then((m) => m.ls(o))));
      net('inspect', 'display detailed information on one or more networks')
        .argument('<network...>')
        .option('-f, --format <template>', 'format the output with a Go-style template')
        .action(act((refs: string[], o: Opts) => import('./commands/network.js').then((m) => m.inspect(refs, o))));
      net('rm', 'remove one or more networks')
        .alias('remove')
        .argument('<network...>')
        .action(act((refs: string[]) => import('./commands/network.js').then((m) => m.rm(refs))));
      net('connect', 'connect a container to a network')
        .argument('<network>')
        .argument('<container>')
        .option('--ip <address>', 'IPv4 address on that network')
        .option('--alias <name>', 'another name for the container on that network', many)
        .action(act((n: string, ctr: string, o: Opts) => import('./commands/network.js').then((m) => m.connect(n, ctr, o))));
      net('disconnect', 'disconnect a container from a network')
        .argument('<network>')
        .argument('<container>')
        .action(act((n: string, ctr: string) => import('./commands/network.js').then((m) => m.disconnect(n, ctr))));
    },
  ],
  [
    'volume',
    'manage named volumes (run -v name:/path)',
    (c) => {
      const vol = (sub: string, desc: string) => c.command(sub).description(desc).helpOption('--help', 'display help for command');
      vol('create', 'create a volume (a random name without one); an existing one is left as it is')
        .argument('[name]')
        .option('-l, --label <key=value>', 'set metadata on the volume', many)
        .action(act((name: string | undefined, o: Opts) => import('./commands/volume.js').then((m) => m.create(name, o))));
      vol('ls', 'list volumes')
        .alias('list')
        .option('-q, --quiet', 'only display volume names')
        .option('-f, --filter <filter>', 'name=…, dangling=true|false, label=key[=value]', many)
        .option('--format <format>', 'json, or a Go-style template like {{.Name}}')
        .action(act((o: Opts) => import('./commands/volume.js').then((m) => m.ls(o))));
      vol('inspect', 'display detailed information on one or more volumes')
        .argument('<volume...>')
        .option('-f, --format <template>', 'format the output with a Go-style template')
        .action(act((names: string[], o: Opts) => import('./commands/volume.js').then((m) => m.inspect(names, o))));
      vol('rm', 'remove one or more volumes (not while a container uses them)')
        .alias('remove')
        .argument('<volume...>')
        .option('-f, --force', 'no error for a volume that does not exist')
        .action(act((names: string[], o: Opts) => import('./commands/volume.js').then((m) => m.rm(names, o))));
      vol('prune', 'remove unused anonymous volumes (with -a: every unused volume)')
        .option('-a, --all', 'every unused volume, named ones too')
        .option('-f, --force', 'do not prompt for confirmation')
        .action(act((o: Opts) => import('./commands/volume.js').then((m) => m.prune(o))));
    },
  ],
  [
    'vm',
    'manage utility VMs (vm isolation)',
    (c) => {
      const t = c.command('template').description('manage VM templates (a saved utility VM each vm-isolated container starts from)').helpOption('--help', 'display help for command');
      const sub = (name: string, desc: string) => t.command(name).description(desc).helpOption('--help', 'display help for command');
      sub('make', 'make the template the VMs of containers with these limits start from (now, not at their first start)')
        .option('-m, --memory <bytes>', 'the containers\' memory limit, as run takes it (default: none)')
        .option('--cpus <n>', 'the containers\' CPUs, as run takes them (default: 1)')
        .option('--vm-kernel <package>', 'the containers\' guest kernel, as run takes it (default: the default kernel)')
        .option('-q, --quiet', 'only print its key')
        .action(act((o: Opts) => import('./commands/vm.js').then((m) => m.make(o))));
      sub('ls', 'list VM templates')
        .alias('list')
        .option('-q, --quiet', 'only print keys')
        .option('--format <format>', 'json')
        .action(act((o: Opts) => import('./commands/vm.js').then((m) => m.ls(o))));
      sub('rm', 'remove VM templates (made again at the next start that needs one)')
        .alias('remove')
        .argument('<template...>')
        .action(act((keys: string[]) => import('./commands/vm.js').then((m) => m.rm(keys))));
      const k = c.command('kernel').description('manage guest kernels (Debian kernel packages containers named with --vm-kernel)').helpOption('--help', 'display help for command');
      const ksub = (name: string, desc: string) => k.command(name).description(desc).helpOption('--help', 'display help for command');
      ksub('ls', 'list the guest kernels made for containers')
        .alias('list')
        .option('-q, --quiet', 'only print package names')
        .option('--format <format>', 'json')
        .action(act((o: Opts) => import('./commands/vm.js').then((m) => m.kernelLs(o))));
      ksub('rm', 'remove guest kernels and the templates made from them')
        .alias('remove')
        .option('-f, --force', 'remove one containers still name (fetched again at their next start)')
        .argument('<package...>')
        .action(act((pkgs: string[], o: Opts) => import('./commands/vm.js').then((m) => m.kernelRm(pkgs, o))));
    },
  ],
  [
    'lb',
    'manage load balancers',
    (c) => {
      const lb = (sub: string, desc: string) => c.command(sub).description(desc).helpOption('--help', 'display help for command');
      lb('create', 'create a load balancer (prints its id)')
        .argument('[backend...]', 'container names/ids or endpoint ids')
        .option('--name <name>', 'name of the load balancer')
        .option('--vip <ip>', 'frontend virtual IP (default: every local address)', many)
        .option('-p, --port <[proto:]external:internal>', 'port mapping, e.g. 80:8080 or udp:53:5353', many)
        .option('--sticky', 'send each client (source IP) to the same backend')
        .action(act((refs: string[], o: Opts) => import('./commands/lb.js').then((m) => m.create(refs, o))));
      lb('ls', 'list load balancers')
        .alias('list')
        .option('-q, --quiet', 'only display ids')
        .option('--no-trunc', "don't truncate output")
        .option('--format <format>', 'json, or a Go-style template like {{.ID}}')
        .action(act((o: Opts) => import('./commands/lb.js').then((m) => m.ls(o))));
      lb('inspect', 'display detailed information on one or more load balancers')
        .argument('<lb...>', 'id, id prefix or name')
        .option('-f, --format <template>', 'format the output with a Go-style template')
        .action(act((refs: string[], o: Opts) => import('./commands/lb.js').then((m) => m.inspect(refs, o))));
      lb('rm', 'remove one or more load balancers')
        .alias('remove')
        .argument('<lb...>', 'id, id prefix or name')
        .action(act((refs: string[]) => import('./commands/lb.js').then((m) => m.rm(refs))));
      const be = lb('backend', 'add or remove backends');
      be.command('add')
        .description('add backends to a load balancer')
        .argument('<lb>')
        .argument('<backend...>', 'container names/ids or endpoint ids')
        .action(act((ref: string, refs: string[]) => import('./commands/lb.js').then((m) => m.backends('Add', ref, refs))));
      be.command('remove')
        .alias('rm')
        .description('remove backends from a load balancer')
        .argument('<lb>')
        .argument('<backend...>', 'container names/ids or endpoint ids')
        .action(act((ref: string, refs: string[]) => import('./commands/lb.js').then((m) => m.backends('Remove', ref, refs))));
    },
  ],
  [
    'stats',
    'display a live stream of container resource usage',
    (c) =>
      c
        .argument('[container...]')
        .option('--no-stream', 'print the first result only')
        .option('--no-trunc', "don't truncate output")
        .option('--format <format>', 'json, or a Go-style template')
        .action(act((refs: string[], o: Opts) => import('./commands/stats.js').then((m) => m.stats(refs, o)))),
  ],
  [
    'top',
    'display the running processes of a container',
    (c) =>
      c
        .argument('<container>')
        .action(act((ref: string) => import('./commands/top.js').then((m) => m.top(ref)))),
  ],
  [
    'images',
    'list images',
    (c) =>
      c
        .argument('[repository]')
        .option('-a, --all', 'show all images')
        .option('-q, --quiet', 'only show image ids')
        .option('--no-trunc', "don't truncate output")
        .option('--format <format>', 'json, or a Go-style template')
        .action(act((ref: string | undefined, o: Opts) => import('./commands/images.js').then((m) => m.images(ref, o)))),
  ],
  [
    'import',
    'import the contents from a tarball to create an image',
    (c) =>
      c
        .argument('<file>', 'a tar or tar.gz file, or - for stdin')
        .argument('[reference]', 'NAME[:TAG]')
        .option('-c, --change <instruction>', 'apply a Dockerfile instruction (CMD, ENV, WORKDIR, ...)', many)
        .option('-m, --message <message>', 'commit message')
        .action(act((file: string, ref: string | undefined, o: Opts) => import('./commands/image-ops.js').then((m) => m.importImage(file, ref, o)))),
  ],
  [
    'commit',
    "create a new image from a container's changes",
    (c) =>
      c
        .argument('<container>')
        .argument('[reference]', 'NAME[:TAG]')
        .option('-c, --change <instruction>', 'apply a Dockerfile instruction', many)
        .option('-m, --message <message>', 'commit message')
        .option('-a, --author <author>', 'author')
        .action(act((ref: string, name: string | undefined, o: Opts) => import('./commands/image-ops.js').then((m) => m.commit(ref, name, o)))),
  ],
  [
    'cp',
    'copy files between a container and the host (CONTAINER:SRC DEST, SRC CONTAINER:DEST; - for a tar on stdin/stdout)',
    (c) =>
      c
        .argument('<source>')
        .argument('<destination>')
        .option('-a, --archive', "keep the files' owners (uid:gid) when copying into a container")
        .option('-L, --follow-link', 'follow a symbolic link in the source path')
        .option('-q, --quiet', 'print nothing while copying (silo prints nothing anyway)')
        .action(act((src: string, dst: string, o: Opts) => import('./commands/cp.js').then((m) => m.cp(src, dst, o)))),
  ],
  [
    'export',
    "export a container's filesystem as a tar archive",
    (c) =>
      c
        .argument('<container>')
        .option('-o, --output <file>', 'write to a file instead of stdout')
        .action(act((ref: string, o: Opts) => import('./commands/cp.js').then((m) => m.exportRoot(ref, o)))),
  ],
  [
    'port',
    "list a running container's published ports, or the host addresses of one of them",
    (c) =>
      c
        .argument('<container>')
        .argument('[port]', 'PORT or PORT/PROTO')
        .action(act((ref: string, p: string | undefined) => import('./commands/inspect-more.js').then((m) => m.port(ref, p)))),
  ],
  [
    'diff',
    "list the files a container changed in its image's (C changed, A added, D deleted)",
    (c) => c.argument('<container>').action(act((ref: string) => import('./commands/inspect-more.js').then((m) => m.diff(ref)))),
  ],
  [
    'history',
    'show the history of an image',
    (c) =>
      c
        .argument('<image>')
        .option('-q, --quiet', 'only print image ids')
        .option('--no-trunc', "don't truncate the output")
        .option('--format <format>', 'json')
        .action(act((ref: string, o: Opts) => import('./commands/inspect-more.js').then((m) => m.history(ref, { ...o, noTrunc: o.trunc === false })))),
  ],
  [
    'update',
    'update the limits or restart policy of one or more containers, live',
    (c) =>
      c
        .argument('<container...>')
        .option('-m, --memory <bytes>', 'memory limit')
        .option('--memory-reservation <bytes>', 'memory soft limit')
        .option('--cpus <n>', 'number of CPUs')
        .option('--cpu-shares <n>', 'CPU shares (relative weight)')
        .option('--cpuset-cpus <list>', 'CPUs in which to allow execution (0-3, 0,1)')
        .option('--pids-limit <n>', 'the most processes the container may have')
        .option('--restart <policy>', 'restart policy: no, always, unless-stopped, on-failure[:N]')
        .action(act((refs: string[], o: Opts) => import('./commands/inspect-more.js').then((m) => m.update(refs, o)))),
  ],
  [
    'rmi',
    'remove one or more images',
    (c) =>
      c
        .argument('<image...>')
        .option('-f, --force', 'force removal of the image')
        .action(act((refs: string[], o: Opts) => import('./commands/image-ops.js').then((m) => m.rmi(refs, o)))),
  ],
  [
    'pull',
    'download an image from a registry',
    (c) =>
      c
        .argument('<name>', 'name[:tag|@digest]')
        .option('--platform <os/arch[/variant]>', 'the platform to pull from a multi-platform image (default: this host)')
        .option('-a, --all-tags', 'pull every tag of the repository')
        .option('-q, --quiet', 'print only the name')
        .action(act((ref: string, o: Opts) => import('./commands/registry.js').then((m) => m.pull(ref, o)))),
  ],
  [
    'push',
    'upload an image to a registry',
    (c) =>
      c
        .argument('<name>', 'name[:tag]')
        .option('-a, --all-tags', 'push every local tag of the repository')
        .option('-q, --quiet', 'print only the name')
        .action(act((ref: string, o: Opts) => import('./commands/registry.js').then((m) => m.push(ref, o)))),
  ],
  [
    'login',
    'log in to a registry (credentials are kept by the daemon, mode 0600)',
    (c) =>
      c
        .argument('[server]', 'registry host (default: docker.io)')
        .option('-u, --username <user>', 'user name')
        .option('-p, --password <password>', 'password (prefer --password-stdin)')
        .option('--password-stdin', 'read the password from standard input')
        .action(act((server: string | undefined, o: Opts) => import('./commands/registry.js').then((m) => m.login(server, o)))),
  ],
  [
    'logout',
    'log out from a registry',
    (c) => c.argument('[server]', 'registry host (default: docker.io)').action(act((server: string | undefined) => import('./commands/registry.js').then((m) => m.logout(server)))),
  ],
  [
    'save',
    'save images to a tar archive (docker-archive with an OCI layout; --format oci: the OCI layout alone)',
    (c) =>
      c
        .argument('<image...>')
        .option('-o, --output <file>', 'write to a file instead of standard output')
        .option('--format <format>', 'docker (default) or oci')
        .action(act((names: string[], o: Opts) => import('./commands/registry.js').then((m) => m.save(names, o)))),
  ],
  [
    'load',
    'load images from a tar archive (docker-archive or OCI layout, possibly compressed)',
    (c) =>
      c
        .option('-i, --input <file>', 'read from a file instead of standard input')
        .option('-q, --quiet', 'print nothing')
        .action(act((o: Opts) => import('./commands/registry.js').then((m) => m.load(o)))),
  ],
  [
    'tag',
    'create a tag TARGET_IMAGE that refers to SOURCE_IMAGE',
    (c) =>
      c
        .argument('<source>')
        .argument('<target>')
        .action(act((s: string, t: string) => import('./commands/image-ops.js').then((m) => m.tag(s, t)))),
  ],
  ...(
    [
      ['image', 'manage images', 'remove unused images', 'imagePrune'],
      ['system', 'manage Silo', 'remove stopped containers and unused images', 'systemPrune'],
    ] as const
  ).map(
    ([verb, desc, pruneDesc, fn]): Verb => [
      verb,
      desc,
      (c) => {
        c.command('prune')
          .description(pruneDesc)
          .helpOption('--help', 'display help for command')
          .option('-a, --all', 'remove all unused images, not just dangling ones')
          .option('-f, --force', 'do not prompt for confirmation')
          .action(act((o: Opts) => import('./commands/prune.js').then((m) => m[fn](o))));
        if (verb !== 'system') return;
        c.command('df')
          .description('show disk usage: images, containers, volumes')
          .helpOption('--help', 'display help for command')
          .option('-v, --verbose', 'show each image, container and volume')
          .option('--format <format>', 'json, or a Go-style template over the summary rows')
          .action(act((o: Opts) => import('./commands/df.js').then((m) => m.df(o))));
      },
    ],
  ),
  [
    'doctor',
    'list (and with --fix remove) kernel objects with Silo\'s names that no Silo object owns',
    (c) =>
      c
        .option('--fix', 'remove what is found')
        .option('--format <format>', 'json')
        .action(act((o: Opts) => import('./commands/doctor.js').then((m) => m.doctor(o)))),
  ],
  [
    'info',
    'display system-wide information',
    (c) =>
      c
        .option('-f, --format <format>', 'json, or a Go-style template')
        .action(act((o: Opts) => import('./commands/system.js').then((m) => m.info(o)))),
  ],
  [
    'version',
    'show the Silo version information',
    (c) =>
      c
        .option('-f, --format <format>', 'json, or a Go-style template')
        .action(act((o: Opts) => import('./commands/system.js').then((m) => m.version(o)))),
  ],
  [
    'daemon',
    'run the Silo daemon',
    (c) =>
      c
        .addOption(new Option('--state-dir <dir>', 'state directory').env('SILO_STATE_DIR').default('/var/lib/silo'))
        .addOption(new Option('--run-dir <dir>', 'runtime directory (socket)').env('SILO_RUN_DIR').default('/run/silo'))
        .addOption(new Option('--cgroup-parent <name>', 'parent cgroup of the containers').env('SILO_CGROUP_PARENT').default('silo'))
        .addOption(new Option('--log-level <level>', 'log level').env('SILO_LOG_LEVEL').default('info'))
        .addOption(new Option('--registry-config <file>', 'registry hosts file: mirrors per registry, insecure registries (JSON)').env('SILO_REGISTRY_CONFIG'))
        .addOption(new Option('--registry-mirror <url>', "a mirror of docker.io (URL), or of another registry (host=URL)").argParser(many))
        .addOption(new Option('--insecure-registry <host>', 'a registry reached over plain HTTP or with an unverified certificate').argParser(many))
        .addOption(new Option('--certs-dir <dir>', 'per-registry CA certificates: <dir>/<host>/ca.crt').env('SILO_CERTS_DIR'))
        .addOption(new Option('--registry-timeout <seconds>', 'how long a registry may keep Silo waiting for an answer').env('SILO_REGISTRY_TIMEOUT').argParser(Number))
        .addOption(new Option('--cri-socket <path>', "the Kubernetes CRI's socket (default <run dir>/cri.sock; \"\" = none)").env('SILO_CRI_SOCKET'))
        .addOption(new Option('--vm-templates <on|off>', 'start vm-isolated containers from saved VM templates').env('SILO_VM_TEMPLATES').choices(['on', 'off']).default('on'))
        .addOption(new Option('--vm-spares <n>', 'utility VMs kept restored ahead for the next vm-isolated containers (0: none)').env('SILO_VM_SPARES').default('1'))
        .addOption(new Option('--log-max-size <size>', "a container log's size before it rotates, unless its create says (-1: no limit)").env('SILO_LOG_MAX_SIZE').default('20m'))
        .addOption(new Option('--log-max-file <n>', "a container log's files kept, the current one included, unless its create says").env('SILO_LOG_MAX_FILE').default('5'))
        .action(async (o: { stateDir: string; runDir: string; cgroupParent: string; logLevel: string; criSocket?: string; vmTemplates: string; vmSpares: string; logMaxSize: string; logMaxFile: string }) => {
          stayAlive = true;
          await (await import('./commands/daemon.js')).daemon(o);
        }),
  ],
];

// Only the verb being run gets its options and arguments defined (all of them for help and suggestions).
const known = new Set(verbs.map((v) => v[0]));
const argv = process.argv.slice(2);
let verb: string | undefined;
for (let i = 0; i < argv.length; i++) {
  if (argv[i] === '-H' || argv[i] === '--host') i++;
  else if (!argv[i].startsWith('-')) {
    verb = argv[i];
    break;
  }
}
const only = verb !== undefined && known.has(verb) ? verb : undefined;
for (const [name, description, define] of verbs) {
  const c = program.command(name).description(description);
  if (!only || only === name) define(c);
}

try {
  if (argv.length === 0) program.help(); // like docker: usage on stdout, exit 0
  await program.parseAsync(process.argv);
} catch (e) {
  stayAlive = false;
  if (e instanceof CommanderError) {
    // commander already printed it (help, version, or a usage error on one line)
    exitCode = e.code === 'commander.helpDisplayed' || e.code === 'commander.version' || e.code === 'commander.help' ? e.exitCode : 125;
  } else {
    const d = describe(e);
    process.stderr.write(`${d.line}\n`);
    exitCode = d.code;
  }
}
if (!stayAlive) process.stdout.write('', () => process.exit(exitCode));
