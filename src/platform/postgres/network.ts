/**
 * Where the managed cluster can be reached from: the addresses it listens on (listen_addresses),
 * the DNS names other machines use for it (its server certificate names them), and the networks
 * standbys stream from and TaskFlow's app hosts connect from (pg_hba). Parsed and checked here, so a
 * bad network is refused when the configuration loads, naming the key.
 */
import { isIP } from 'node:net';

/** The `postgres` configuration keys this module reads. */
export interface NetworkConfig {
  listenAddresses: string[];
  hostNames: string[];
  allowedNetworks: { replication: string[]; clients: string[]; allowEverywhere: boolean };
}

/** The address TaskFlow itself connects through on this machine: always listened on. */
export const LOOPBACK = '127.0.0.1';

export interface IpNetwork {
  family: 4 | 6;
  /** The network address, canonical (IPv6 as RFC 5952 writes it). */
  address: string;
  prefix: number;
}

/** An IPv6 address as 8 groups (an embedded IPv4 tail is converted), or null when it is not one. */
function ipv6Groups(text: string): number[] | null {
  if (isIP(text) !== 6) return null;
  let body = text;
  const v4 = /(\d+\.\d+\.\d+\.\d+)$/.exec(body);
  if (v4?.[1]) {
    const [a, b, c, d] = v4[1].split('.').map(Number) as [number, number, number, number];
    body = body.slice(0, -v4[1].length) + `${((a << 8) | b).toString(16)}:${((c << 8) | d).toString(16)}`;
  }
  const [head = '', tail] = body.split('::');
  const parts = (s: string) => (s === '' ? [] : s.split(':').map((g) => parseInt(g, 16)));
  const left = parts(head);
  const right = tail === undefined ? [] : parts(tail);
  const missing = 8 - left.length - right.length;
  return [...left, ...Array<number>(tail === undefined ? 0 : missing).fill(0), ...right];
}

function toBits(family: 4 | 6, address: string): bigint {
  if (family === 4) return address.split('.').reduce((acc, octet) => (acc << 8n) | BigInt(Number(octet)), 0n);
  return (ipv6Groups(address) ?? []).reduce((acc, group) => (acc << 16n) | BigInt(group), 0n);
}

function fromBits(family: 4 | 6, bits: bigint): string {
  if (family === 4) return [24n, 16n, 8n, 0n].map((shift) => String((bits >> shift) & 255n)).join('.');
  const full = Array.from({ length: 8 }, (_, i) => ((bits >> BigInt((7 - i) * 16)) & 0xffffn).toString(16)).join(':');
  // The WHATWG URL parser writes IPv6 in its RFC 5952 form (`fd00::`, `::1`).
  return new URL(`http://[${full}]/`).hostname.slice(1, -1);
}

/** An address in one canonical spelling (`::1` and `0:0:0:0:0:0:0:1` are the same), or the text itself when it is no address. */
export function canonicalAddress(text: string): string {
  const family = isIP(text);
  return family === 0 ? text.toLowerCase() : fromBits(family as 4 | 6, toBits(family as 4 | 6, text));
}

export function isLoopback(address: string): boolean {
  const family = isIP(address);
  if (family === 4) return address.startsWith('127.');
  return family === 6 && canonicalAddress(address) === '::1';
}

/** `10.0.0.0/24`, `fd00::/64` or a single address (`10.0.0.6`: a /32 or /128); throws a message saying what is wrong. */
export function parseNetwork(text: string): IpNetwork {
  const [address = '', prefixText, ...extra] = text.split('/');
  const found = isIP(address);
  if (found === 0 || extra.length > 0 || (prefixText !== undefined && !/^\d{1,3}$/.test(prefixText))) {
    throw new Error(`'${text}' is not an IP network: write it as 10.0.0.0/24 or fd00::/64, or a single address such as 10.0.0.6`);
  }
  const family = found === 4 ? 4 : 6;
  const width = family === 4 ? 32 : 128;
  const prefix = prefixText === undefined ? width : Number(prefixText);
  if (prefix > width) throw new Error(`'${text}': the prefix of an IPv${family} network is 0 to ${width}`);
  const bits = toBits(family, address);
  const mask = ((1n << BigInt(width)) - 1n) ^ ((1n << BigInt(width - prefix)) - 1n);
  if ((bits & mask) !== bits) {
    const network = fromBits(family, bits & mask);
    throw new Error(`'${text}' has address bits set past its /${prefix} prefix: the network is ${canonicalAddress(network)}/${prefix} (or write ${address}/${width} for that one address)`);
  }
  return { family, address: canonicalAddress(address), prefix };
}

/** Whether `address` is inside `network`. */
export function networkContains(network: IpNetwork, address: string): boolean {
  const family = isIP(address);
  if (family !== network.family) return false;
  const width = family === 4 ? 32 : 128;
  const shift = BigInt(width - network.prefix);
  return toBits(network.family, address) >> shift === toBits(network.family, network.address) >> shift;
}

/** The pg_hba address column of a network: always with its prefix. */
export function hbaAddress(network: IpNetwork): string {
  return `${network.address}/${network.prefix}`;
}

/** The addresses listen_addresses gets: loopback first (TaskFlow connects through it), then the configured ones. */
export function listenAddressesOf(network: Pick<NetworkConfig, 'listenAddresses'>): string[] {
  const seen = new Set<string>();
  return [LOOPBACK, ...network.listenAddresses].filter((a) => {
    const key = canonicalAddress(a);
    if (seen.has(key)) return false;
    seen.add(key);
    return true;
  });
}

/** Whether two listen_addresses values name the same addresses (order and spelling aside). */
export function sameAddresses(a: string[], b: string[]): boolean {
  const set = (list: string[]) => [...new Set(list.map((x) => canonicalAddress(x.trim())))].sort().join(',');
  return set(a) === set(b);
}

/** Whether the configuration opens the cluster to anything beyond this machine. */
export function isExposed(network: NetworkConfig): boolean {
  return listenAddressesOf(network).some((a) => !isLoopback(a)) || network.allowedNetworks.replication.length + network.allowedNetworks.clients.length > 0;
}

const LABEL = /^[a-z0-9-]{1,63}$/;

/** A DNS name: lower-case labels of letters, digits and '-' (no wildcard, no trailing dot). */
function isHostName(name: string): boolean {
  return name.length <= 253 && name.split('.').every((label) => LABEL.test(label) && !label.startsWith('-') && !label.endsWith('-'));
}

/** The problems of the network keys, each as `key: message` (config.ts reports them with where they came from). */
export function networkProblems(network: NetworkConfig): string[] {
  const problems: string[] = [];
  // Keys without the index: config.ts then names where the list came from; the value says which item.
  for (const address of network.listenAddresses) {
    const key = 'postgres.listenAddresses';
    if (address === '*' || address === '0.0.0.0' || address === '::') {
      problems.push(`${key}: '${address}' would listen on every interface, including ones added later, and the server certificate could not name the address standbys use; list this machine's addresses instead`);
    } else if (isIP(address) === 0) {
      problems.push(`${key}: '${address}' is not an IP address of this machine (networks go in postgres.allowedNetworks, DNS names in postgres.hostNames)`);
    }
  }
  for (const name of network.hostNames) {
    if (!isHostName(name)) problems.push(`postgres.hostNames: '${name}' is not a DNS name (lower-case labels of letters, digits and '-', no wildcard)`);
  }
  for (const kind of ['replication', 'clients'] as const) {
    for (const text of network.allowedNetworks[kind]) {
      const key = `postgres.allowedNetworks.${kind}`;
      try {
        const parsed = parseNetwork(text);
        if (parsed.prefix === 0 && !network.allowedNetworks.allowEverywhere) {
          problems.push(
            `${key}: '${text}' lets every address on the internet try ${kind === 'replication' ? 'the replication login' : "TaskFlow's logins, the administrator's included"}; list the networks of your ${kind === 'replication' ? 'standbys' : 'app hosts'}, or set postgres.allowedNetworks.allowEverywhere to true when a firewall in front does the limiting`,
          );
        }
      } catch (err) {
        problems.push(`${key}: ${(err as Error).message}`);
      }
    }
  }
  return problems;
}
