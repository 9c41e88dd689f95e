/**
 * Where a webhook may point. A webhook makes the worker send requests to a URL a user chose, so
 * without a check any user could make it call what only the servers reach: the cloud metadata
 * endpoint (169.254.169.254), the database's or Redis's host, an admin port on loopback (SSRF).
 * Private, loopback, link-local and other special-purpose ranges are refused unless the operator
 * allows them (WEBHOOK_ALLOW_PRIVATE_TARGETS, for a receiver inside the deployment's network).
 *
 * Checked when a webhook is set and again before each delivery, since a name can be re-pointed
 * after it was accepted. A name re-pointed between that lookup and fetch's own is not covered.
 */
import { lookup } from 'node:dns/promises';
import { BlockList, isIP } from 'node:net';

const blocked = new BlockList();
for (const [net, prefix] of [
  ['0.0.0.0', 8], ['10.0.0.0', 8], ['100.64.0.0', 10], ['127.0.0.0', 8], ['169.254.0.0', 16], ['172.16.0.0', 12],
  ['192.0.0.0', 24], ['192.0.2.0', 24], ['192.168.0.0', 16], ['198.18.0.0', 15], ['198.51.100.0', 24], ['203.0.113.0', 24],
  ['224.0.0.0', 4], ['240.0.0.0', 4],
] as const) blocked.addSubnet(net, prefix, 'ipv4');
for (const [net, prefix] of [['::', 128], ['::1', 128], ['64:ff9b::', 96], ['100::', 64], ['2001:db8::', 32], ['fc00::', 7], ['fe80::', 10], ['ff00::', 8]] as const) {
  blocked.addSubnet(net, prefix, 'ipv6');
}

function isBlocked(address: string, family: number): boolean {
  // An IPv4 address written as IPv6 (::ffff:127.0.0.1) is the IPv4 address.
  const mapped = /^::ffff:(\d+\.\d+\.\d+\.\d+)$/i.exec(address);
  if (mapped) return blocked.check(mapped[1]!, 'ipv4');
  return blocked.check(address, family === 6 ? 'ipv6' : 'ipv4');
}

export type Resolver = (host: string) => Promise<Array<{ address: string; family: number }>>;
const systemResolver: Resolver = (host) => lookup(host, { all: true, verbatim: true });

/** Why `raw` is not an acceptable webhook target (plain language, for the `url` field), or null. */
export async function webhookTargetProblem(raw: string, opts: { allowPrivate: boolean; resolve?: Resolver }): Promise<string | null> {
  let u: URL;
  try {
    u = new URL(raw);
  } catch {
    return 'is not a valid web address';
  }
  if (u.protocol !== 'http:' && u.protocol !== 'https:') return 'must start with http:// or https://';
  if (u.username || u.password) return 'must not contain a user name or password (the signature authenticates deliveries)';
  if (opts.allowPrivate) return null;
  const host = u.hostname.replace(/^\[(.*)\]$/, '$1');
  let addresses: Array<{ address: string; family: number }>;
  if (isIP(host)) addresses = [{ address: host, family: isIP(host) }];
  else {
    try {
      addresses = await (opts.resolve ?? systemResolver)(host);
    } catch {
      return `names a host that cannot be found (${host})`;
    }
  }
  const bad = addresses.find((a) => isBlocked(a.address, a.family));
  if (bad) return `points at a private, loopback or link-local address (${bad.address}); webhooks are only delivered to public addresses`;
  if (addresses.length === 0) return `names a host that cannot be found (${host})`;
  return null;
}
