// Deciding what to do with one DNS query: answer it from the network's container names, or forward it. Pure, over
// dns-packet's codec, so it is unit-tested without sockets.

import * as dnsPacket from 'dns-packet';

/** Addresses for a name on this network, or undefined when the name is not ours (then the query is forwarded). */
export type Lookup = (name: string) => string[] | undefined;

export type Decision = { kind: 'answer'; reply: Buffer } | { kind: 'forward' } | { kind: 'drop' };

const RCODE = { NOERROR: 0, FORMERR: 1, SERVFAIL: 2, NXDOMAIN: 3, REFUSED: 5 } as const;
const TTL = 10;

export function decide(query: Buffer, lookup: Lookup): Decision {
  let pkt: dnsPacket.DecodedPacket;
  try {
    pkt = dnsPacket.decode(query);
  } catch {
    return { kind: 'drop' };
  }
  if (pkt.type !== 'query') return { kind: 'drop' };
  const q = pkt.questions?.[0];
  if (!q || pkt.questions!.length !== 1 || (q.class !== undefined && q.class !== 'IN')) return { kind: 'forward' };
  const ips = lookup(q.name.toLowerCase().replace(/\.$/, ''));
  if (ips === undefined) return { kind: 'forward' };
  // A name we own: A from its IPv4 addresses, AAAA from its IPv6 ones (dual-stack networks); any other type gets an
  // empty NOERROR so resolvers do not look elsewhere for it.
  const want = q.type === 'A' ? 4 : q.type === 'AAAA' ? 6 : 0;
  const answers: dnsPacket.Answer[] = ips
    .filter((ip) => (ip.includes(':') ? 6 : 4) === want)
    .map((ip) => ({ type: q.type as 'A' | 'AAAA', name: q.name, class: 'IN', ttl: TTL, data: ip }));
  const reply = dnsPacket.encode({
    type: 'response',
    id: pkt.id,
    flags: dnsPacket.AUTHORITATIVE_ANSWER | dnsPacket.RECURSION_AVAILABLE | ((pkt.flags ?? 0) & dnsPacket.RECURSION_DESIRED),
    questions: [q],
    answers,
  });
  return { kind: 'answer', reply };
}

/** A reply carrying only an error code, for when forwarding failed or is not allowed. */
export function errorReply(query: Buffer, rcode: keyof typeof RCODE): Buffer | undefined {
  try {
    const pkt = dnsPacket.decode(query);
    return dnsPacket.encode({
      type: 'response',
      id: pkt.id,
      flags: ((pkt.flags ?? 0) & dnsPacket.RECURSION_DESIRED) | dnsPacket.RECURSION_AVAILABLE | RCODE[rcode],
      questions: pkt.questions,
    });
  } catch {
    return undefined;
  }
}
