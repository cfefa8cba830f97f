/**
 * What TaskFlow sends: one message to one recipient, of a known kind. Everything here is checked
 * before a message is queued, so a bad address or a header-injection attempt never reaches SMTP.
 */
import { isPlainAddress } from '../accounts/email.ts';

/** Why a message is sent; logged and counted, never the body. */
export type MailKind = 'invitation' | 'setup' | 'password-reset' | 'password-changed' | 'email-changed' | 'second-factor-changed';

export const MAIL_KINDS: readonly MailKind[] = ['invitation', 'setup', 'password-reset', 'password-changed', 'email-changed', 'second-factor-changed'];

export interface MailMessage {
  /** One recipient address, `local@domain` (no display name). */
  to: string;
  subject: string;
  text: string;
  html?: string;
  kind: MailKind;
  /** The tenant the message is about, if any. */
  tenantId?: string;
}

export interface MailAddress {
  name: string;
  address: string;
}

export const LIMITS = {
  subject: 200,
  text: 100_000,
  html: 200_000,
} as const;

const UUID = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/i;
// eslint-disable-next-line no-control-regex -- exactly the characters a header must not hold
const CONTROL = /[\u0000-\u001f\u007f]/;

/**
 * Whether `address` is a plain ASCII `local@domain` within RFC 5321 lengths. Single-label domains
 * (`localhost`) are allowed, for first runs; quoted local parts and display names are not.
 */
export function isValidAddress(address: string): boolean {
  return isPlainAddress(address, { singleLabelDomain: true });
}

/** The domain of an address, lower case: what logs show instead of the address. */
export function recipientDomain(address: string): string {
  const at = address.lastIndexOf('@');
  return at === -1 ? '(none)' : address.slice(at + 1).toLowerCase();
}

/** Parses a sender, `Name <local@domain>` or `local@domain`; null when it is not one. */
export function parseSender(from: string): MailAddress | null {
  if (CONTROL.test(from)) return null;
  const angled = /^([^<>]*)<([^<>]+)>$/.exec(from.trim());
  const name = (angled ? (angled[1] ?? '') : '').trim().replace(/^"(.*)"$/, '$1');
  const address = angled ? (angled[2] ?? '').trim() : from.trim();
  if (!isValidAddress(address) || name.length > 100) return null;
  return { name, address };
}

/** What is wrong with a message, one line per problem; empty when it may be sent. */
export function mailMessageProblems(message: MailMessage): string[] {
  const problems: string[] = [];
  if (!isValidAddress(message.to)) problems.push('to: not a valid address (local@domain, ASCII, one recipient)');
  if (!MAIL_KINDS.includes(message.kind)) problems.push(`kind: must be one of ${MAIL_KINDS.join(', ')}`);
  if (message.subject.trim() === '') problems.push('subject: must not be empty');
  if (message.subject.length > LIMITS.subject) problems.push(`subject: longer than ${LIMITS.subject} characters`);
  if (CONTROL.test(message.subject)) problems.push('subject: must be one line without control characters');
  if (message.text.trim() === '') problems.push('text: must not be empty');
  if (message.text.length > LIMITS.text) problems.push(`text: longer than ${LIMITS.text} characters`);
  if (message.html !== undefined && message.html.length > LIMITS.html) problems.push(`html: longer than ${LIMITS.html} characters`);
  if (message.tenantId !== undefined && !UUID.test(message.tenantId)) problems.push('tenantId: not a UUID');
  return problems;
}

/** A message that cannot be sent as given; a programming error or unchecked input upstream. */
export class InvalidMailError extends Error {
  override name = 'InvalidMailError';
  readonly problems: string[];
  constructor(problems: string[]) {
    super(`invalid mail message: ${problems.join('; ')}`);
    this.problems = problems;
  }
}

/** Throws InvalidMailError listing every problem of the message. */
export function assertValidMessage(message: MailMessage): void {
  const problems = mailMessageProblems(message);
  if (problems.length > 0) throw new InvalidMailError(problems);
}
