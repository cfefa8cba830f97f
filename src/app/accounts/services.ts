/** What the account routes need beyond the tenant's database, built once per server. */
import type { Config } from '../../config.ts';
import type { Argon2Params } from '../../platform/accounts/passwords.ts';
import type { Throttles } from '../../platform/accounts/throttles.ts';
import type { Audit } from '../../platform/audit/audit.ts';
import type { MailMessage } from '../../platform/mail/message.ts';

/** An e-mail to send; queued durably in the outbox, delivered in the background. */
export type OutgoingMail = MailMessage & { tenantId: string };

export interface AccountServices {
  settings: Config['accounts'];
  argon2: Argon2Params;
  audit: Audit;
  throttles: Throttles;
  /** Encrypts TOTP secrets at rest. */
  totpKey: Buffer;
  /** Signs CSRF tokens. */
  csrfKey: Buffer;
  sendMail(mail: OutgoingMail): Promise<void>;
  /** Runs work after the response is sent (so a reply's timing does not tell what was done); shutdown waits for it. */
  runLater(name: string, work: () => Promise<void>): void;
}

/** Facts about the request a command records and uses for links; built by `callerOf`. */
export interface Caller {
  tenantId: string;
  tenantSlug: string;
  tenantName: string;
  /** https://acme.example.com, for links in mail. */
  origin: string;
  /** The client's address; null for operator actions from the command line. */
  ip: string | null;
  userAgent: string | null;
}
