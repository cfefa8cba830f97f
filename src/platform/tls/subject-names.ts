/**
 * The names a server certificate is valid for (subjectAltName): DNS names and IP addresses. libpq's
 * sslmode=verify-full (PostgreSQL 15 checks IP addresses too) and Node's TLS accept a server only
 * when the host they connected to is among them, so a certificate must name every address and name
 * clients use, and is made again when that list changes.
 */
import { X509Certificate } from 'node:crypto';
import { isIP } from 'node:net';
import { canonicalAddress } from '../postgres/network.ts';

/** A subjectAltName entry as `selfsigned` takes it: 2 a DNS name, 7 an IP address. */
export type AltName = { type: 2; value: string } | { type: 7; ip: string };

/** The subjectAltName entries for these hosts (IP addresses and DNS names), without duplicates. */
export function altNamesFor(hosts: string[]): AltName[] {
  const seen = new Set<string>();
  const names: AltName[] = [];
  for (const host of hosts) {
    const key = canonicalAddress(host);
    if (seen.has(key)) continue;
    seen.add(key);
    names.push(isIP(host) ? { type: 7, ip: host } : { type: 2, value: host.toLowerCase() });
  }
  return names;
}

/** The hosts a certificate names, canonical (IPv6 expanded, DNS names lower-case). */
export function certificateHosts(pem: string): string[] {
  const san = new X509Certificate(pem).subjectAltName ?? '';
  return san
    .split(',')
    .map((part) => part.trim())
    .flatMap((part) => {
      if (part.startsWith('DNS:')) return [part.slice(4).toLowerCase()];
      if (part.startsWith('IP Address:')) return [canonicalAddress(part.slice('IP Address:'.length))];
      return [];
    });
}

/** Whether the certificate names exactly these hosts (a host added or dropped means a new certificate). */
export function namesExactly(pem: string, hosts: string[]): boolean {
  const have = [...new Set(certificateHosts(pem))].sort();
  const want = [...new Set(hosts.map(canonicalAddress))].sort();
  return have.length === want.length && have.every((h, i) => h === want[i]);
}
