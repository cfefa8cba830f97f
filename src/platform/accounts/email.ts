/**
 * E-mail addresses as account identifiers. Only ASCII addresses are accepted (internationalised
 * domains in their xn-- form), which rules out look-alike characters from other scripts; the whole
 * address is compared in lower case.
 */

/** One dot-separated atom of a local part (RFC 5322 atext). */
const ATOM = /^[a-z0-9!#$%&'*+/=?^_`{|}~-]+$/;
const LABEL = /^(?!-)[a-z0-9-]{1,63}(?<!-)$/;

export type EmailResult = { ok: true; email: string } | { ok: false; reason: string };

/** Normalises and validates an address: trimmed, lower case, RFC 5321 lengths, a dotted domain. */
export function normaliseEmail(input: string): EmailResult {
  const email = input.trim().toLowerCase();
  if (email.length > 254) return { ok: false, reason: 'the e-mail address is too long' };
  if (/[^\x21-\x7e]/.test(email)) return { ok: false, reason: 'the e-mail address must be plain ASCII (write an international domain in its xn-- form)' };
  const at = email.lastIndexOf('@');
  if (at < 1 || at === email.length - 1) return { ok: false, reason: 'the e-mail address is not valid' };
  const local = email.slice(0, at);
  const domain = email.slice(at + 1);
  if (local.length > 64 || !local.split('.').every((atom) => ATOM.test(atom))) return { ok: false, reason: 'the e-mail address is not valid' };
  const labels = domain.split('.');
  if (labels.length < 2 || !labels.every((l) => LABEL.test(l)) || /^\d+$/.test(labels.at(-1) ?? '')) {
    return { ok: false, reason: 'the e-mail address is not valid' };
  }
  return { ok: true, email };
}

/** The part of an address a password must not contain. */
export function localPart(email: string): string {
  return email.slice(0, email.lastIndexOf('@'));
}
