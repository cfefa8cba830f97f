/** Facts a process running inside a PostgreSQL data directory reads from its files, without connecting. */
import { readFileSync } from 'node:fs';
import { join } from 'node:path';

/** The system identifier: the first 8 bytes of global/pg_control (host byte order). */
export function readSystemIdentifier(pgData: string): string {
  const control = readFileSync(join(pgData, 'global', 'pg_control'));
  if (control.length < 8) throw new Error(`${pgData}/global/pg_control is too short`);
  return (process.arch === 's390x' || process.arch === 'ppc64' ? control.readBigUInt64BE(0) : control.readBigUInt64LE(0)).toString();
}

/** The port the running postmaster listens on (line 4 of postmaster.pid). */
export function readPostmasterPort(pgData: string): number {
  const lines = readFileSync(join(pgData, 'postmaster.pid'), 'utf8').split('\n');
  const port = Number(lines[3]);
  if (!Number.isInteger(port) || port <= 0) throw new Error(`${pgData}/postmaster.pid names no port`);
  return port;
}
