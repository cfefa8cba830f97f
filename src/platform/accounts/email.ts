/**
 * E-mail addresses as account identifiers. Only ASCII addresses are accepted (internationalised
 * domains in their xn-- form), which rules out look-alike characters from other scripts; the whole
 * address is compared in lower case.
 */

/** One dot-separated atom of a local part (RFC 5322 atext). */
const ATOM = /^[A-Za-z0-9!#$%&'*+/=?^_`{|}~-]+$/;
const LABEL = /^(?!-)[A-Za-z0-9-]{1,63}(?<!-)$/;

/**
 * Whether `address` is a plain ASCII `local@domain` (dot-atom local part, no quotes, no display
 * name) within RFC 5321 lengths, with a domain whose last label is not numeric. Single-label
 * domains (`localhost`) only when `singleLabelDomain` is set (a sender on a first run).
 */
export function isPlainAddress(address: string, options: { singleLabelDomain: boolean }): boolean {
  if (address.length > 254 || /[^\x21-\x7e]/.test(address)) return false;
  const at = address.lastIndexOf('@');
  if (at < 1 || at === address.length - 1) return false;
  const local = address.slice(0, at);
  const labels = address.slice(at + 1).split('.');
  if (local.length > 64 || !local.split('.').every((atom) => ATOM.test(atom))) return false;
  if (labels.length < 2 && !options.singleLabelDomain) return false;
  return labels.every((l) => LABEL.test(l)) && !/^\d+$/.test(labels.at(-1) ?? '');
}

export type EmailResult = { ok: true; email: string } | { ok: false; reason: string };

/** Normalises and validates an address: trimmed, lower case, RFC 5321 lengths, a dotted domain. */
export function normaliseEmail(input: string): EmailResult {
  const email = input.trim().toLowerCase();
  if (email.length > 254) return { ok: false, reason: 'the e-mail address is too long' };
  if (/[^\x21-\x7e]/.test(email)) return { ok: false, reason: 'the e-mail address must be plain ASCII (write an international domain in its xn-- form)' };
  if (!isPlainAddress(email, { singleLabelDomain: false })) return { ok: false, reason: 'the e-mail address is not valid' };
  return { ok: true, email };
}

/** The part of an address a password must not contain. */
export function localPart(email: string): string {
  return email.slice(0, email.lastIndexOf('@'));
}
