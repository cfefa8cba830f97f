/**
 * Bech32 (BIP 173) as age uses it: no length limit, one case per string, checksum over the
 * lower-case form. Only the plain Bech32 constant; age does not use Bech32m.
 */

const CHARSET = 'qpzry9x8gf2tvdw0s3jn54khce6mua7l';
const GENERATORS = [0x3b6a57b2, 0x26508e6d, 0x1ea119fa, 0x3d4233dd, 0x2a1462b3];

function polymod(values: number[]): number {
  let chk = 1;
  for (const value of values) {
    const top = chk >>> 25;
    chk = ((chk & 0x1ffffff) << 5) ^ value;
    for (let i = 0; i < 5; i++) {
      if ((top >>> i) & 1) chk ^= GENERATORS[i] as number;
    }
  }
  return chk >>> 0;
}

function hrpExpand(hrp: string): number[] {
  const out: number[] = [];
  for (const ch of hrp) out.push(ch.charCodeAt(0) >>> 5);
  out.push(0);
  for (const ch of hrp) out.push(ch.charCodeAt(0) & 31);
  return out;
}

/** Regroups bits (8 → 5 to encode, 5 → 8 to decode); decoding refuses non-zero or over-long padding. */
function convertBits(data: ArrayLike<number>, from: number, to: number, pad: boolean): number[] | null {
  let acc = 0;
  let bits = 0;
  const out: number[] = [];
  const maxv = (1 << to) - 1;
  for (let i = 0; i < data.length; i++) {
    const value = data[i] as number;
    if (value >>> from !== 0) return null;
    acc = (acc << from) | value;
    bits += from;
    while (bits >= to) {
      bits -= to;
      out.push((acc >>> bits) & maxv);
    }
  }
  if (pad) {
    if (bits > 0) out.push((acc << (to - bits)) & maxv);
  } else if (bits >= from || ((acc << (to - bits)) & maxv) !== 0) {
    return null;
  }
  return out;
}

/** Encodes bytes under a human-readable part, in lower case (callers upper-case identities). */
export function bech32Encode(hrp: string, bytes: Uint8Array): string {
  const lowerHrp = hrp.toLowerCase();
  const data = convertBits(bytes, 8, 5, true) ?? [];
  const mod = polymod([...hrpExpand(lowerHrp), ...data, 0, 0, 0, 0, 0, 0]) ^ 1;
  const checksum: number[] = [];
  for (let i = 0; i < 6; i++) checksum.push((mod >>> (5 * (5 - i))) & 31);
  return lowerHrp + '1' + [...data, ...checksum].map((d) => CHARSET[d]).join('');
}

/** Decodes a Bech32 string; throws on mixed case, a bad character or a bad checksum. */
export function bech32Decode(text: string): { hrp: string; bytes: Buffer } {
  if (text !== text.toLowerCase() && text !== text.toUpperCase()) throw new Error('mixed case');
  const lower = text.toLowerCase();
  const split = lower.lastIndexOf('1');
  if (split < 1 || split + 7 > lower.length) throw new Error('malformed');
  const hrp = lower.slice(0, split);
  for (const ch of hrp) {
    const code = ch.charCodeAt(0);
    if (code < 33 || code > 126) throw new Error('bad character in prefix');
  }
  const data: number[] = [];
  for (const ch of lower.slice(split + 1)) {
    const value = CHARSET.indexOf(ch);
    if (value < 0) throw new Error(`bad character '${ch}'`);
    data.push(value);
  }
  if (polymod([...hrpExpand(hrp), ...data]) !== 1) throw new Error('bad checksum');
  const bytes = convertBits(data.slice(0, -6), 5, 8, false);
  if (!bytes) throw new Error('bad padding');
  return { hrp, bytes: Buffer.from(bytes) };
}
