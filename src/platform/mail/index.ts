/**
 * Outgoing mail: queue with `enqueueMail` (inside your transaction), and run `startMail` once per
 * server process to deliver what is queued.
 */
import type { Platform } from '../platform.ts';
import { MailWorker, type MailWorkerOptions, type PassResult } from './outbox.ts';
import { createTransport, type MailTransport, type TransportOptions } from './transport.ts';

export { enqueueMail, outboxSummary, MailWorker, MAIL_QUEUED_CHANNEL, type OutboxSummary, type PassResult } from './outbox.ts';
export { isValidAddress, InvalidMailError, MAIL_KINDS, type MailKind, type MailMessage } from './message.ts';
export type { MailTransport } from './transport.ts';

export interface MailService {
  transport: MailTransport;
  worker: MailWorker;
  /** Stops the worker (waiting briefly for a delivery in progress) and closes the transport. */
  close(): Promise<void>;
}

export type StartMailOptions = TransportOptions & Omit<MailWorkerOptions, 'control' | 'target' | 'transport' | 'log'>;

/**
 * Creates the configured transport (SMTP, or the local mailbox) and starts a worker on the control
 * database. Fails at once on a bad mail configuration (such as an unreadable password file); an
 * unreachable SMTP server is not an error here, its messages wait in the outbox.
 */
export async function startMail(platform: Pick<Platform, 'config' | 'control' | 'target' | 'log'>, options: StartMailOptions = {}): Promise<MailService> {
  const { env, timeouts, ...workerOptions } = options;
  const transport = createTransport(platform.config.mail, platform.config.dataDir, { ...(env ? { env } : {}), ...(timeouts ? { timeouts } : {}) });
  const log = platform.log.child({ component: 'mail' });
  const worker = new MailWorker({ ...workerOptions, control: platform.control, target: platform.target, transport, log });
  await worker.start();
  if (transport.kind === 'mailbox') log.info({ destination: transport.description }, "no SMTP server configured: mail goes to the local mailbox; read it with 'taskflow mail list'");
  else log.info({ destination: transport.description }, 'mail goes out over SMTP');
  return {
    transport,
    worker,
    async close() {
      await worker.stop();
      transport.close();
    },
  };
}

/**
 * One delivery pass outside the server, for commands that queue mail (`tenant create
 * --owner-email`): what cannot be sent now stays queued for the running server's worker.
 */
export async function deliverQueuedMail(platform: Pick<Platform, 'config' | 'control' | 'log'>): Promise<PassResult> {
  const transport = createTransport(platform.config.mail, platform.config.dataDir);
  try {
    const worker = new MailWorker({ control: platform.control, transport, log: platform.log.child({ component: 'mail' }) });
    return await worker.runOnce();
  } finally {
    transport.close();
  }
}
