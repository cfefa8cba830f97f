/**
 * Turning a failed delivery into what the outbox records and the log shows: a one-line reason with
 * no secret and no full address in it, and whether trying again can help.
 */

export interface SendFailure {
  /** One line, at most MAX_ERROR_LENGTH characters; safe to store and to log. */
  reason: string;
  /** The server refused the message or its recipient for good (5xx on the envelope or the data). */
  permanent: boolean;
}

export const MAX_ERROR_LENGTH = 500;

/** SMTP commands whose 5xx answer is about this message, not about the server or our login. */
const MESSAGE_COMMANDS = new Set(['MAIL FROM', 'RCPT TO', 'DATA']);

const ADDRESS = /[A-Za-z0-9!#$%&'*+/=?^_`{|}~.-]+@([A-Za-z0-9][A-Za-z0-9.-]*)/g;

/** Replaces the local part of every address in `text`, so logs show only domains. */
export function maskAddresses(text: string): string {
  return text.replace(ADDRESS, (_match, domain: string) => `…@${domain}`);
}

/** Removes each secret and the forms SMTP AUTH sends it in (base64, AUTH PLAIN's `\0user\0password`). */
export function scrubSecrets(text: string, secrets: readonly { user?: string | undefined; password: string }[]): string {
  let out = text;
  for (const { user, password } of secrets) {
    if (password.length === 0) continue;
    const forms = [password, Buffer.from(password).toString('base64')];
    if (user !== undefined) forms.push(Buffer.from(`\0${user}\0${password}`).toString('base64'));
    for (const form of forms) out = out.replaceAll(form, '[redacted]');
  }
  return out;
}

interface NodemailerError {
  message?: unknown;
  code?: unknown;
  responseCode?: unknown;
  command?: unknown;
}

/** Describes a send error for the outbox and the log; see SendFailure. */
export function describeSendError(err: unknown, secrets: readonly { user?: string | undefined; password: string }[] = []): SendFailure {
  const e = (typeof err === 'object' && err !== null ? err : { message: String(err) }) as NodemailerError;
  const message = typeof e.message === 'string' && e.message !== '' ? e.message : 'unknown error';
  const code = typeof e.code === 'string' ? e.code : undefined;
  const responseCode = typeof e.responseCode === 'number' ? e.responseCode : undefined;
  const command = typeof e.command === 'string' ? e.command.toUpperCase() : undefined;
  let reason = maskAddresses(scrubSecrets(code && !message.startsWith(code) ? `${code}: ${message}` : message, secrets));
  reason = reason.replace(/\s+/g, ' ').trim();
  if (reason.length > MAX_ERROR_LENGTH) reason = `${reason.slice(0, MAX_ERROR_LENGTH - 1)}…`;
  const permanent = responseCode !== undefined && responseCode >= 500 && responseCode < 600 && command !== undefined && MESSAGE_COMMANDS.has(command);
  return { reason, permanent };
}
