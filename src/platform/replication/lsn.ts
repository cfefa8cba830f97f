/** PostgreSQL WAL positions (`16/B374D848`) as exact byte offsets. */

/** Parses an LSN as PostgreSQL prints it; throws on anything else. */
export function parseLsn(text: string): bigint {
  const match = /^([0-9A-Fa-f]{1,8})\/([0-9A-Fa-f]{1,8})$/.exec(text.trim());
  if (!match?.[1] || !match[2]) throw new Error(`not a WAL position: ${text}`);
  return (BigInt(`0x${match[1]}`) << 32n) | BigInt(`0x${match[2]}`);
}

/** Formats a byte offset the way PostgreSQL prints an LSN. */
export function formatLsn(value: bigint): string {
  const hi = (value >> 32n).toString(16).toUpperCase();
  const lo = (value & 0xffffffffn).toString(16).toUpperCase();
  return `${hi}/${lo}`;
}

/** Bytes from `behind` to `ahead`, never negative; null when either is unknown. */
export function lsnGap(ahead: string | null, behind: string | null): number | null {
  if (ahead === null || behind === null) return null;
  const gap = parseLsn(ahead) - parseLsn(behind);
  return gap > 0n ? Number(gap) : 0;
}

/** The later of two LSNs (either may be unknown). */
export function laterLsn(a: string | null, b: string | null): string | null {
  if (a === null) return b;
  if (b === null) return a;
  return parseLsn(a) >= parseLsn(b) ? a : b;
}

/** A byte count for people: `512 B`, `3.2 kB`, `16.0 MB`. */
export function formatBytes(bytes: number): string {
  if (bytes < 1000) return `${bytes} B`;
  if (bytes < 1_000_000) return `${(bytes / 1000).toFixed(1)} kB`;
  if (bytes < 1_000_000_000) return `${(bytes / 1_000_000).toFixed(1)} MB`;
  return `${(bytes / 1_000_000_000).toFixed(1)} GB`;
}
