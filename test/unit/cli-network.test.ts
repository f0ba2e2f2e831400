// Networking in the CLI: -p/--network parsing, the PORTS column, `network` and `lb` requests (pure parts, then the real
// binary against a fake daemon).

import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { createServer, type Server } from 'node:http';
import { rmSync } from 'node:fs';
import { fakeSocket, readBody, replyJson, runSilo } from './fake-daemon.js';
import {
  buildCreateRequest,
  buildLoadBalancerRequest,
  buildNetworking,
  buildNetworkRequest,
  parseLbPort,
  parsePublish,
  parsePublishList,
} from '../../src/cli/flags.js';
import { formatPorts } from '../../src/cli/format.js';
import { CliError } from '../../src/cli/errors.js';
import { lbRow } from '../../src/cli/commands/lb.js';
import { networkRow } from '../../src/cli/commands/network.js';

const cliErr = (re: RegExp) => (e: unknown) => e instanceof CliError && re.test(e.message);

test('parsePublish: docker spellings', () => {
  assert.deepEqual(parsePublish('8080:80'), { Protocol: 'tcp', InternalPort: 80, ExternalPort: 8080 });
  assert.deepEqual(parsePublish('8080:80/tcp'), { Protocol: 'tcp', InternalPort: 80, ExternalPort: 8080 });
  assert.deepEqual(parsePublish('5353:53/udp'), { Protocol: 'udp', InternalPort: 53, ExternalPort: 5353 });
  assert.deepEqual(parsePublish('5353:53/UDP'), { Protocol: 'udp', InternalPort: 53, ExternalPort: 5353 });
  assert.deepEqual(parsePublish('127.0.0.1:9000:90/udp'), { Protocol: 'udp', InternalPort: 90, ExternalPort: 9000, HostIp: '127.0.0.1' });
  assert.deepEqual(parsePublish('0.0.0.0:80:80'), { Protocol: 'tcp', InternalPort: 80, ExternalPort: 80 });
  assert.deepEqual(parsePublish(':80:80'), { Protocol: 'tcp', InternalPort: 80, ExternalPort: 80 });
});

test('parsePublish: clear errors', () => {
  // No host port: 0, one the daemon picks.
  assert.deepEqual(parsePublish('80'), { Protocol: 'tcp', InternalPort: 80, ExternalPort: 0 });
  assert.deepEqual(parsePublish('80/udp'), { Protocol: 'udp', InternalPort: 80, ExternalPort: 0 });
  assert.deepEqual(parsePublish('127.0.0.1::80'), { Protocol: 'tcp', InternalPort: 80, ExternalPort: 0, HostIp: '127.0.0.1' });
  assert.equal(parsePublishList(['80', '80', '127.0.0.1::80']).length, 3);
  assert.throws(() => parsePublish('8080:'), cliErr(/no container port/));
  assert.throws(() => parsePublish('70000:80'), cliErr(/invalid host port '70000'.*1-65535/));
  assert.throws(() => parsePublish('0:80'), cliErr(/invalid host port '0'/));
  assert.throws(() => parsePublish('80:http'), cliErr(/invalid container port 'http'/));
  assert.throws(() => parsePublish('8000-8001:80-81'), cliErr(/port ranges are not supported/));
  assert.throws(() => parsePublish('80:80/sctp'), cliErr(/invalid protocol 'sctp'.*tcp or udp/));
  assert.throws(() => parsePublish('80:80/'), cliErr(/invalid protocol ''/));
  assert.deepEqual(parsePublish('[::]:8080:80'), { Protocol: 'tcp', InternalPort: 80, ExternalPort: 8080, HostIp: '::' });
  assert.deepEqual(parsePublish('[FD12::1]:53:53/udp'), { Protocol: 'udp', InternalPort: 53, ExternalPort: 53, HostIp: 'fd12::1' });
  assert.throws(() => parsePublish('[1.2.3.4]:80:80'), cliErr(/not an IPv6 address/));
  assert.throws(() => parsePublish('::1:80:80'), cliErr(/an IPv6 host address goes in brackets/));
  assert.throws(() => parsePublish('300.1.1.1:80:80'), cliErr(/invalid host IP in '300.1.1.1:80:80'/));
  assert.throws(() => parsePublish('localhost:80:80'), cliErr(/not an IPv4 address/));
  assert.throws(() => parsePublishList(['80:80', '80:81']), cliErr(/host port 80\/tcp is published more than once/));
  assert.throws(() => parsePublishList(['127.0.0.1:80:80', '80:81']), cliErr(/more than once/));
  assert.equal(parsePublishList(['80:80', '80:80/udp', '127.0.0.1:81:80', '10.0.0.1:81:80']).length, 4);
});

test('buildNetworking and the create document', () => {
  assert.equal(buildNetworking({}), undefined);
  assert.deepEqual(buildNetworking({ net: 'none' }), { Network: 'none' });
  assert.deepEqual(buildNetworking({ network: 'front', ip: '10.9.0.5', networkAlias: ['web', 'www'], publish: ['8080:80', '127.0.0.1:9000:90/udp'] }), {
    Network: 'front',
    IpAddress: '10.9.0.5',
    Aliases: ['web', 'www'],
    PortMappings: [
      { Protocol: 'tcp', InternalPort: 80, ExternalPort: 8080 },
      { Protocol: 'udp', InternalPort: 90, ExternalPort: 9000, HostIp: '127.0.0.1' },
    ],
  });
  assert.deepEqual(buildNetworking({ publish: ['80:80'] }), { PortMappings: [{ Protocol: 'tcp', InternalPort: 80, ExternalPort: 80 }] });
  assert.throws(() => buildNetworking({ network: 'none', publish: ['80:80'] }), cliErr(/port publishing and --network none/));
  assert.throws(() => buildNetworking({ network: 'none', ip: '10.0.0.2' }), cliErr(/--ip and --network none/));
  assert.throws(() => buildNetworking({ network: 'a', net: 'b' }), cliErr(/conflicting options/));
  assert.throws(() => buildNetworking({ ip: 'fd00::5' }), cliErr(/IPv6 addresses are not supported/));
  assert.throws(() => buildNetworking({ networkAlias: ['bad alias'] }), cliErr(/invalid --network-alias/));
  const req = buildCreateRequest('busybox', [], { network: 'front', publish: ['80:8080'], memory: '64m' }, { env: {} });
  assert.deepEqual(req.Document?.Container, {
    Memory: { SizeInMB: 64 },
    Networking: { Network: 'front', PortMappings: [{ Protocol: 'tcp', InternalPort: 8080, ExternalPort: 80 }] },
  });
});

test('formatPorts: docker PORTS column', () => {
  assert.equal(formatPorts(undefined), '');
  assert.equal(formatPorts([]), '');
  assert.equal(formatPorts([{ Protocol: 'tcp', InternalPort: 80, ExternalPort: 8080 }]), '0.0.0.0:8080->80/tcp');
  assert.equal(
    formatPorts([
      { Protocol: 'udp', InternalPort: 90, ExternalPort: 9000, HostIp: '127.0.0.1' },
      { Protocol: 'tcp', InternalPort: 80, ExternalPort: 8080 },
    ]),
    '0.0.0.0:8080->80/tcp, 127.0.0.1:9000->90/udp',
  );
  assert.equal(
    formatPorts([
      { Protocol: 'tcp', InternalPort: 81, ExternalPort: 8001 },
      { Protocol: 'tcp', InternalPort: 80, ExternalPort: 8000 },
      { Protocol: 'tcp', InternalPort: 82, ExternalPort: 8002 },
      { Protocol: 'tcp', InternalPort: 443, ExternalPort: 8443 },
      { Protocol: 'udp', InternalPort: 53, ExternalPort: 53 },
    ]),
    '0.0.0.0:8000-8002->80-82/tcp, 0.0.0.0:8443->443/tcp, 0.0.0.0:53->53/udp',
  );
});

test('buildNetworkRequest: drivers, subnets, parent, outbound NAT exceptions', () => {
  assert.deepEqual(buildNetworkRequest('n1', {}), { Name: 'n1', Type: 'nat' });
  assert.deepEqual(buildNetworkRequest('n1', { driver: 'bridge' }), { Name: 'n1', Type: 'nat' });
  assert.deepEqual(buildNetworkRequest('n1', { driver: 'internal', subnet: ['10.5.0.0/24'], gateway: ['10.5.0.1'] }), {
    Name: 'n1',
    Type: 'internal',
    Subnets: [{ IpAddressPrefix: '10.5.0.0/24', GatewayAddress: '10.5.0.1' }],
  });
  assert.deepEqual(buildNetworkRequest('lan', { driver: 'l2bridge', subnet: ['192.168.1.0/24'], opt: ['parent=eth0'] }), {
    Name: 'lan',
    Type: 'l2bridge',
    Subnets: [{ IpAddressPrefix: '192.168.1.0/24' }],
    Interface: 'eth0',
  });
  assert.equal(buildNetworkRequest('lan', { driver: 'l2bridge', subnet: ['192.168.1.0/24'], interface: 'eth1' }).Interface, 'eth1');
  assert.deepEqual(buildNetworkRequest('n', { outboundNatException: ['10.0.0.0/8', '192.168.5.5'] }).Policies, [
    { Type: 'OutBoundNAT', Settings: { Exceptions: ['10.0.0.0/8', '192.168.5.5'] } },
  ]);
  assert.throws(() => buildNetworkRequest('n', { driver: 'overlay' }), cliErr(/invalid driver 'overlay'/));
  assert.throws(() => buildNetworkRequest('n', { subnet: ['10.0.0.0'] }), cliErr(/expected a CIDR/));
  assert.throws(() => buildNetworkRequest('n', { subnet: ['10.0.0.0/33'] }), cliErr(/prefix length/));
  assert.throws(() => buildNetworkRequest('n', { subnet: ['fd00::/64'] }), cliErr(/IPv6 --subnet needs --ipv6/));
  assert.deepEqual(buildNetworkRequest('n', { ipv6: true, subnet: ['10.9.0.0/24', 'fd12:3456::/64'], gateway: ['10.9.0.1', 'fd12:3456::1'] }).Subnets, [
    { IpAddressPrefix: '10.9.0.0/24', GatewayAddress: '10.9.0.1' },
    { IpAddressPrefix: 'fd12:3456::/64', GatewayAddress: 'fd12:3456::1' },
  ]);
  assert.equal(buildNetworkRequest('n', { ipv6: true }).EnableIpv6, true);
  assert.throws(() => buildNetworkRequest('n', { ipv6: true, subnet: ['fd12::/129'] }), cliErr(/0-128/));
  assert.throws(() => buildNetworkRequest('n', { gateway: ['10.0.0.1'] }), cliErr(/every --gateway needs a --subnet/));
  assert.throws(() => buildNetworkRequest('n', { driver: 'l2bridge', subnet: ['10.0.0.0/24'] }), cliErr(/parent=IFACE/));
  assert.throws(() => buildNetworkRequest('n', { driver: 'l2bridge', opt: ['parent=eth0'] }), cliErr(/needs --subnet/));
  assert.throws(() => buildNetworkRequest('n', { opt: ['parent=eth0'] }), cliErr(/l2bridge networks only/));
  assert.throws(() => buildNetworkRequest('n', { opt: ['mtu=1400'] }), cliErr(/only parent=IFACE/));
  assert.throws(() => buildNetworkRequest('n', { driver: 'internal', outboundNatException: ['10.0.0.0/8'] }), cliErr(/nat networks only/));
});

test('parseLbPort and buildLoadBalancerRequest', () => {
  assert.deepEqual(parseLbPort('80:8080'), { Protocol: 'tcp', ExternalPort: 80, InternalPort: 8080 });
  assert.deepEqual(parseLbPort('udp:53:5353'), { Protocol: 'udp', ExternalPort: 53, InternalPort: 5353 });
  assert.deepEqual(parseLbPort('TCP:443:8443'), { Protocol: 'tcp', ExternalPort: 443, InternalPort: 8443 });
  assert.deepEqual(parseLbPort('53:53/udp'), { Protocol: 'udp', ExternalPort: 53, InternalPort: 53 });
  assert.throws(() => parseLbPort('80'), cliErr(/expected \[tcp:\|udp:\]external:internal/));
  assert.throws(() => parseLbPort('sctp:80:80'), cliErr(/invalid protocol 'sctp'/));
  assert.throws(() => parseLbPort('80:99999'), cliErr(/invalid internal port/));
  assert.throws(() => parseLbPort('udp:53:53/udp'), cliErr(/protocol once/));
  assert.deepEqual(buildLoadBalancerRequest(['web1', 'web2'], { name: 'lb1', vip: ['10.0.0.100'], port: ['80:8080'], sticky: true }), {
    Name: 'lb1',
    FrontendVIPs: ['10.0.0.100'],
    PortMappings: [{ Protocol: 'tcp', ExternalPort: 80, InternalPort: 8080, DistributionType: 'SourceIP' }],
    Endpoints: ['web1', 'web2'],
  });
  assert.deepEqual(buildLoadBalancerRequest([], { port: ['80:80', 'udp:80:80'] }), {
    PortMappings: [
      { Protocol: 'tcp', ExternalPort: 80, InternalPort: 80 },
      { Protocol: 'udp', ExternalPort: 80, InternalPort: 80 },
    ],
  });
  assert.throws(() => buildLoadBalancerRequest([], {}), cliErr(/at least one -p/));
  assert.throws(() => buildLoadBalancerRequest([], { port: ['80:80', '80:81'] }), cliErr(/more than once/));
  assert.throws(() => buildLoadBalancerRequest([], { port: ['80:80'], vip: ['::1'] }), cliErr(/IPv6/));
});

test('rows of network ls and lb ls', () => {
  const id = 'a'.repeat(64);
  const n = { Id: id, Name: 'front', Type: 'nat', Ipams: [{ Type: 'Static', Subnets: [{ IpAddressPrefix: '10.9.0.0/16', GatewayAddress: '10.9.0.1' }] }], Dns: {}, Policies: [], Bridge: 'br', CreatedAt: '' } as const;
  const r = networkRow(n as any);
  assert.equal(r.ID, 'aaaaaaaaaaaa');
  assert.equal(r.Subnet, '10.9.0.0/16');
  assert.equal(r.Gateway, '10.9.0.1');
  const lb = {
    Id: id,
    Name: 'lb1',
    FrontendVIPs: [],
    PortMappings: [
      { Protocol: 'tcp', InternalPort: 8080, ExternalPort: 80, DistributionType: 'PerConnection' },
      { Protocol: 'udp', InternalPort: 53, ExternalPort: 53, DistributionType: 'SourceIP' },
    ],
    Endpoints: ['e1', 'e2'],
    CreatedAt: '',
  };
  assert.deepEqual(lbRow(lb as any), { ID: 'aaaaaaaaaaaa', Name: 'lb1', VIPs: '*', Ports: '80->8080/tcp, 53->53/udp (sticky)', Backends: 2, CreatedAt: '' });
});

// ---- the binary against a fake daemon ----------------------------------------------------------------------------

const { dir, sock } = fakeSocket('silo-cli-net-');
const NET_ID = 'b'.repeat(64);
const LB_ID = 'c'.repeat(64);
const CTR_ID = 'd'.repeat(64);
const seen: { method: string; url: string; body: any }[] = [];
let server: Server;

const network = { Id: NET_ID, Name: 'front', Type: 'nat', Ipams: [{ Type: 'Static', Subnets: [{ IpAddressPrefix: '10.9.0.0/16' }] }], Dns: {}, Policies: [], Bridge: 'silo0', CreatedAt: '2024-01-01T00:00:00Z' };
const loadBalancer = { Id: LB_ID, Name: 'lb1', FrontendVIPs: [], PortMappings: [{ Protocol: 'tcp', InternalPort: 8080, ExternalPort: 80, DistributionType: 'PerConnection' }], Endpoints: ['e1'], CreatedAt: '2024-01-01T00:00:00Z' };
const record = (state: string) => ({
  Id: CTR_ID,
  Name: 'web',
  Created: '2024-01-01T00:00:00Z',
  State: state,
  StartedAt: new Date().toISOString(),
  ImageName: 'busybox:latest',
  Init: { Args: ['sh'] },
  Document: { Container: { Networking: { Network: 'front', PortMappings: [{ Protocol: 'tcp', InternalPort: 80, ExternalPort: 8080 }, { Protocol: 'udp', InternalPort: 90, ExternalPort: 9000, HostIp: '127.0.0.1' }] } } },
});

before(async () => {
  server = createServer(async (req, res) => {
    const body = await readBody(req);
    const { method, url } = req as { method: string; url: string };
    seen.push({ method, url, body });
    const json = replyJson(res);
    if (url === '/v1/systems' && method === 'POST') return json(201, { Id: CTR_ID, Warnings: [] });
    if (url.startsWith('/v1/systems?')) return json(200, [record('Running')]);
    if (url === '/v1/systems' && method === 'GET') return json(200, [record('Running')]);
    if (url === '/v1/systems/web/networks' && method === 'POST') return json(201, { Id: 'e9' });
    if (url === '/v1/systems/web/networks/front' && method === 'DELETE') return json(204);
    if (url === '/v1/networks' && method === 'POST') return json(201, { ...network, Name: body.Name });
    if (url === '/v1/networks' && method === 'GET') return json(200, [network]);
    if (url === '/v1/networks/front' && method === 'GET') return json(200, network);
    if (url === '/v1/networks/front' && method === 'DELETE') return json(204);
    if (url === '/v1/networks/busy' && method === 'DELETE')
      return json(409, { message: 'network busy has active endpoints\n2 in use', code: 'SILO_FAILED_PRECONDITION' });
    if (url === '/v1/loadbalancers' && method === 'POST') return json(201, loadBalancer);
    if (url === '/v1/loadbalancers' && method === 'GET') return json(200, [loadBalancer]);
    if (url === `/v1/loadbalancers/${LB_ID}` && method === 'GET') return json(200, loadBalancer);
    if (url === `/v1/loadbalancers/${LB_ID}` && method === 'DELETE') return json(204);
    if (url === `/v1/loadbalancers/${LB_ID}/backends` && method === 'POST') return json(200, loadBalancer);
    json(404, { message: `no such object: ${url}`, code: 'SILO_NOT_FOUND' });
  });
  await new Promise<void>((r) => server.listen(sock, r));
});

after(() => {
  server.close();
  rmSync(dir, { recursive: true, force: true });
});

const silo = (args: string[]) => runSilo(sock, args);

test('create: --net, -p (repeated), --ip, --network-alias in the document; bad -p exits 125 on one line', async () => {
  seen.length = 0;
  const r = await silo(['create', '--net', 'front', '-p', '8080:80', '-p', '127.0.0.1:9000:90/udp', '--ip', '10.9.0.7', '--network-alias', 'www', 'busybox']);
  assert.equal(r.code, 0, r.stderr);
  assert.deepEqual(seen.find((s) => s.url === '/v1/systems')!.body.Document.Container.Networking, {
    Network: 'front',
    IpAddress: '10.9.0.7',
    Aliases: ['www'],
    PortMappings: [
      { Protocol: 'tcp', InternalPort: 80, ExternalPort: 8080 },
      { Protocol: 'udp', InternalPort: 90, ExternalPort: 9000, HostIp: '127.0.0.1' },
    ],
  });
  const bad = await silo(['run', '-p', '80:', 'busybox']);
  assert.equal(bad.code, 125);
  assert.match(bad.stderr, /^silo: invalid publish '80:': no container port/);
  assert.equal(bad.stderr.trim().split('\n').length, 1);
});

test('ps: the PORTS column', async () => {
  const r = await silo(['ps']);
  assert.equal(r.code, 0, r.stderr);
  assert.match(r.stdout.split('\n')[1], /0\.0\.0\.0:8080->80\/tcp, 127\.0\.0\.1:9000->90\/udp\s+web$/);
});

test('network create/ls/inspect/rm/connect/disconnect', async () => {
  seen.length = 0;
  const c = await silo(['network', 'create', '-d', 'internal', '--subnet', '10.7.0.0/24', '--gateway', '10.7.0.1', 'back']);
  assert.equal(c.code, 0, c.stderr);
  assert.equal(c.stdout, `${NET_ID}\n`);
  assert.deepEqual(seen[0].body, { Name: 'back', Type: 'internal', Subnets: [{ IpAddressPrefix: '10.7.0.0/24', GatewayAddress: '10.7.0.1' }] });
  const ls = await silo(['network', 'ls']);
  assert.equal(ls.stdout, 'NETWORK ID     NAME      DRIVER    SUBNET\nbbbbbbbbbbbb   front     nat       10.9.0.0/16\n');
  assert.equal((await silo(['network', 'ls', '-q'])).stdout, 'bbbbbbbbbbbb\n');
  assert.deepEqual(JSON.parse((await silo(['network', 'ls', '--format', 'json'])).stdout).map((n: any) => n.Name), ['front']);
  assert.equal((await silo(['network', 'ls', '--format', '{{.Name}} {{.Driver}}'])).stdout, 'front nat\n');
  const ins = await silo(['network', 'inspect', 'front', 'nope']);
  assert.equal(ins.code, 125);
  assert.equal(JSON.parse(ins.stdout)[0].Id, NET_ID);
  assert.match(ins.stderr, /^Error response from daemon: no such object/);
  const rm = await silo(['network', 'rm', 'front', 'busy']);
  assert.equal(rm.code, 125);
  assert.equal(rm.stdout, 'front\n');
  assert.equal(rm.stderr, 'Error response from daemon: network busy has active endpoints; 2 in use\n');
  seen.length = 0;
  const con = await silo(['network', 'connect', '--ip', '10.9.0.9', '--alias', 'a1', 'front', 'web']);
  assert.equal(con.code, 0, con.stderr);
  assert.deepEqual(seen[0].body, { Network: 'front', IpAddress: '10.9.0.9', Aliases: ['a1'] });
  const dis = await silo(['network', 'disconnect', 'front', 'web']);
  assert.equal(dis.code, 0, dis.stderr);
  const bad = await silo(['network', 'create', '-d', 'overlay', 'x']);
  assert.equal(bad.code, 125);
  assert.match(bad.stderr, /^silo: invalid driver 'overlay'/);
});

test('inspect falls back to networks', async () => {
  const r = await silo(['inspect', 'front']);
  assert.equal(r.code, 0, r.stderr);
  assert.equal(JSON.parse(r.stdout)[0].Name, 'front');
  const n = await silo(['inspect', 'zzz']);
  assert.equal(n.stderr, 'silo: No such object: zzz\n');
  const t = await silo(['inspect', '--type', 'network', 'zzz']);
  assert.equal(t.stderr, 'silo: No such network: zzz\n');
});

test('lb create/ls/inspect/rm/backend', async () => {
  seen.length = 0;
  const c = await silo(['lb', 'create', '--name', 'lb1', '-p', '80:8080', '--port', 'udp:53:53', '--sticky', 'web1', 'web2']);
  assert.equal(c.code, 0, c.stderr);
  assert.equal(c.stdout, `${LB_ID}\n`);
  assert.deepEqual(seen[0].body, {
    Name: 'lb1',
    PortMappings: [
      { Protocol: 'tcp', ExternalPort: 80, InternalPort: 8080, DistributionType: 'SourceIP' },
      { Protocol: 'udp', ExternalPort: 53, InternalPort: 53, DistributionType: 'SourceIP' },
    ],
    Endpoints: ['web1', 'web2'],
  });
  const ls = await silo(['lb', 'ls']);
  assert.equal(ls.stdout, 'ID             NAME      VIPS      PORTS          BACKENDS\ncccccccccccc   lb1       *         80->8080/tcp   1\n');
  const ins = await silo(['lb', 'inspect', 'lb1']); // by name: the CLI falls back to the list
  assert.equal(ins.code, 0, ins.stderr);
  assert.equal(JSON.parse(ins.stdout)[0].Id, LB_ID);
  seen.length = 0;
  assert.equal((await silo(['lb', 'backend', 'add', 'ccc', 'web3'])).code, 0);
  assert.deepEqual(seen.at(-1), { method: 'POST', url: `/v1/loadbalancers/${LB_ID}/backends`, body: { Add: ['web3'] } });
  assert.equal((await silo(['lb', 'backend', 'remove', LB_ID, 'web1'])).code, 0);
  assert.deepEqual(seen.at(-1)!.body, { Remove: ['web1'] });
  const rm = await silo(['lb', 'rm', 'lb1']);
  assert.equal(rm.stdout, 'lb1\n');
  assert.deepEqual(seen.at(-1), { method: 'DELETE', url: `/v1/loadbalancers/${LB_ID}`, body: undefined });
  const bad = await silo(['lb', 'create', 'web1']);
  assert.equal(bad.code, 125);
  assert.match(bad.stderr, /^silo: a load balancer needs at least one -p/);
});
