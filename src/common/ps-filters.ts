// The values of docker ps's filters, checked alike where Silo offers them: the Docker door (GET /containers/json)
// and the silo CLI (`silo ps --filter`, over the native API's records). A value outside a key's set is refused, so a
// typo never lists more than was asked for.

const ONE_OF: Record<string, string[]> = {
  status: ['created', 'restarting', 'running', 'removing', 'paused', 'exited', 'dead'],
  health: ['starting', 'healthy', 'unhealthy', 'none'],
  isolation: ['default', 'process', 'hyperv', 'vm'],
  'is-task': ['true', 'false', '1', '0'],
};

/** `80`, `80/udp`, `8000-8080/tcp` → a test of a port and protocol (tcp unless named); undefined if malformed. */
export function portRange(v: string): ((port: number, proto: string) => boolean) | undefined {
  const m = /^(\d{1,5})(?:-(\d{1,5}))?(?:\/(tcp|udp|sctp))?$/.exec(v);
  const lo = Number(m?.[1]);
  const hi = m?.[2] === undefined ? lo : Number(m[2]);
  if (!m || lo < 1 || hi > 65535 || hi < lo) return undefined;
  const proto = m[3] ?? 'tcp';
  return (port, p) => p.toLowerCase() === proto && port >= lo && port <= hi;
}

/** docker's name filter: a regular expression, matched against the name without its leading slash. */
export function nameRegExp(v: string): RegExp | undefined {
  try {
    return new RegExp(v.replace(/^\//, ''));
  } catch {
    return undefined;
  }
}

/** Why docker ps refuses `key=value`, in one line; undefined if it takes it. */
export function psValueError(key: string, value: string): string | undefined {
  const bad = `invalid filter '${key}=${value}'`;
  if (ONE_OF[key] && !ONE_OF[key].includes(value)) return `${bad}: ${ONE_OF[key].join(', ')}`;
  if (key === 'exited' && !/^-?\d+$/.test(value)) return `${bad}: an exit code`;
  if ((key === 'publish' || key === 'expose') && !portRange(value)) return `${bad}: a port, a range of ports (8000-8080), and /tcp, /udp or /sctp`;
  if (key === 'name' && !nameRegExp(value)) return `${bad}: not a regular expression`;
  return undefined;
}
