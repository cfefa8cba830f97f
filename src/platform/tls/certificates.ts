/**
 * The server's TLS certificates: the operator's files, or for local use a certificate authority of
 * this installation, made on first start in <dataDir>/tls/ca.crt, which signs a certificate for the
 * base domain and, on demand (TLS SNI), one for each tenant host such as demo.localhost. Browsers
 * and curl refuse a wildcard over a single label (`*.localhost`), so a wildcard alone cannot serve
 * local tenants. Trust ca.crt once (or pass it to curl with --cacert) and every tenant host works.
 */
import { createPrivateKey, X509Certificate } from 'node:crypto';
import { chmodSync, existsSync, mkdirSync, readFileSync, renameSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import type { Logger } from 'pino';
import { generate } from 'selfsigned';
import type { Config } from '../../config.ts';
import { UserError } from '../../errors.ts';

export interface TlsMaterial {
  cert: string;
  key: string;
  source: 'self-signed' | 'files';
  certPath: string;
  notAfter: Date;
  /** DNS names the certificate covers. */
  names: string[];
  /** Self-signed mode: the local authority that signs per-host certificates, and the file clients trust. */
  issuer?: { cert: string; key: string; certPath: string };
}

const RENEW_BEFORE_DAYS = 30;
const DAY = 86_400_000;

function namesOf(x509: X509Certificate): string[] {
  return (x509.subjectAltName ?? '')
    .split(',')
    .map((part) => part.trim())
    .filter((part) => part.startsWith('DNS:'))
    .map((part) => part.slice(4));
}

/** Reads and checks a certificate and its key: they belong together and the certificate is valid now. */
export function inspectTls(cert: string, key: string, certPath: string, source: TlsMaterial['source']): TlsMaterial {
  let x509: X509Certificate;
  try {
    x509 = new X509Certificate(cert);
  } catch (err) {
    throw new UserError(`${certPath} is not a PEM certificate: ${(err as Error).message}`, 2);
  }
  let matches: boolean;
  try {
    matches = x509.checkPrivateKey(createPrivateKey(key));
  } catch (err) {
    throw new UserError(`the TLS key for ${certPath} cannot be read: ${(err as Error).message}`, 2);
  }
  if (!matches) throw new UserError(`the TLS key does not belong to the certificate ${certPath}`, 2);
  const notAfter = new Date(x509.validTo);
  if (notAfter.getTime() <= Date.now()) throw new UserError(`the certificate ${certPath} expired on ${notAfter.toISOString()}`, 2);
  return { cert, key, source, certPath, notAfter, names: namesOf(x509) };
}

function readFile(path: string, what: string): string {
  try {
    return readFileSync(path, 'utf8');
  } catch (err) {
    throw new UserError(`cannot read the TLS ${what} ${path}: ${(err as NodeJS.ErrnoException).code ?? (err as Error).message}`, 2);
  }
}

/** A new local certificate authority (EC P-256, SHA-256, two years) that signs only server certificates. */
export async function makeAuthority(name: string): Promise<{ cert: string; key: string }> {
  const pems = await generate([{ name: 'commonName', value: `TaskFlow local CA (${name})` }], {
    keyType: 'ec',
    curve: 'P-256',
    algorithm: 'sha256',
    notAfterDate: new Date(Date.now() + 730 * DAY),
    extensions: [
      { name: 'basicConstraints', cA: true, pathLenConstraint: 0, critical: true },
      { name: 'keyUsage', keyCertSign: true, cRLSign: true, critical: true },
    ],
  });
  return { cert: pems.cert, key: pems.private };
}

/** A server certificate (EC P-256, SHA-256, one year) for these DNS names and the loopback addresses, signed by `issuer` (or by itself). */
export async function makeSelfSigned(names: string[], issuer?: { cert: string; key: string }): Promise<{ cert: string; key: string }> {
  const pems = await generate([{ name: 'commonName', value: names[0] ?? 'localhost' }], {
    keyType: 'ec',
    curve: 'P-256',
    algorithm: 'sha256',
    notAfterDate: new Date(Date.now() + 365 * DAY),
    extensions: [
      { name: 'basicConstraints', cA: false },
      { name: 'keyUsage', digitalSignature: true, critical: true },
      { name: 'extKeyUsage', serverAuth: true },
      { name: 'subjectAltName', altNames: [...names.map((value) => ({ type: 2 as const, value })), { type: 7, ip: '127.0.0.1' }, { type: 7, ip: '::1' }] },
    ],
    ...(issuer ? { ca: issuer } : {}),
  });
  return { cert: pems.cert, key: pems.private };
}

/** The names the default certificate covers for this base domain. */
export function selfSignedNames(baseDomain: string): string[] {
  const names = [baseDomain, ...(baseDomain.includes('.') ? [`*.${baseDomain}`] : []), 'localhost'];
  return [...new Set(names)];
}

function writePair(dir: string, base: string, pair: { cert: string; key: string }): void {
  // Key first, then certificate, each by rename: a crash leaves the old pair or a pair remade next start.
  const keyPath = join(dir, `${base}.key`);
  const certPath = join(dir, `${base}.crt`);
  writeFileSync(`${keyPath}.tmp`, pair.key, { mode: 0o600 });
  renameSync(`${keyPath}.tmp`, keyPath);
  writeFileSync(`${certPath}.tmp`, pair.cert, { mode: 0o644 });
  renameSync(`${certPath}.tmp`, certPath);
}

function readPair(dir: string, base: string): { cert: string; key: string } | null {
  const keyPath = join(dir, `${base}.key`);
  const certPath = join(dir, `${base}.crt`);
  if (!existsSync(keyPath) || !existsSync(certPath)) return null;
  return { cert: readFileSync(certPath, 'utf8'), key: readFileSync(keyPath, 'utf8') };
}

function stillGood(pair: { cert: string; key: string } | null, certPath: string, names: string[] = []): TlsMaterial | null {
  if (!pair) return null;
  const material = inspectTlsQuietly(pair.cert, pair.key, certPath);
  if (!material || material.notAfter.getTime() - Date.now() < RENEW_BEFORE_DAYS * DAY) return null;
  return names.every((n) => material.names.includes(n)) ? material : null;
}

/** The certificate to serve, or null when TLS is not served here (proxy, off). */
export async function loadTls(config: Config, log: Logger): Promise<TlsMaterial | null> {
  const tls = config.server.tls;
  if (tls.mode === 'proxy' || tls.mode === 'off') return null;
  if (tls.mode === 'files') {
    const certPath = tls.certFile ?? '';
    const material = inspectTls(readFile(certPath, 'certificate'), readFile(tls.keyFile ?? '', 'key'), certPath, 'files');
    const daysLeft = Math.floor((material.notAfter.getTime() - Date.now()) / DAY);
    if (daysLeft < 14) log.warn({ certificate: certPath, notAfter: material.notAfter.toISOString(), daysLeft }, 'the TLS certificate expires soon');
    return material;
  }
  const dir = join(config.dataDir, 'tls');
  mkdirSync(dir, { recursive: true, mode: 0o700 });
  chmodSync(dir, 0o700);
  const caPath = join(dir, 'ca.crt');
  let ca = stillGood(readPair(dir, 'ca'), caPath);
  let caPair = ca ? { cert: ca.cert, key: ca.key } : null;
  if (!caPair) {
    log.info({ certificate: caPath }, 'making a local certificate authority for HTTPS');
    caPair = await makeAuthority(config.server.baseDomain);
    writePair(dir, 'ca', caPair);
    ca = inspectTls(caPair.cert, caPair.key, caPath, 'self-signed');
  }
  const wanted = selfSignedNames(config.server.baseDomain);
  const leafPath = join(dir, 'server.crt');
  let leaf = ca ? stillGood(readPair(dir, 'server'), leafPath, wanted) : null;
  if (leaf && !new X509Certificate(leaf.cert).checkIssued(new X509Certificate(caPair.cert))) leaf = null;
  if (!leaf) {
    const made = await makeSelfSigned(wanted, caPair);
    writePair(dir, 'server', made);
    leaf = inspectTls(made.cert, made.key, leafPath, 'self-signed');
  }
  return { ...leaf, issuer: { ...caPair, certPath: caPath } };
}

function inspectTlsQuietly(cert: string, key: string, certPath: string): TlsMaterial | null {
  try {
    return inspectTls(cert, key, certPath, 'self-signed');
  } catch {
    return null;
  }
}
