/**
 * Where mail goes: an SMTP server (nodemailer), or, with none configured, the local mailbox in the
 * data directory. Both build the same RFC 5322 message with nodemailer.
 */
import { readFileSync } from 'node:fs';
import nodemailer, { type SendMailOptions, type SMTPTransportOptions } from 'nodemailer';
import { ConfigError, type Config } from '../../config.ts';
import { LocalMailbox, mailboxDir } from './mailbox.ts';
import { parseSender, type MailAddress, type MailMessage } from './message.ts';
import { describeSendError, type SendFailure } from './send-error.ts';

export type MailConfig = Config['mail'];
export type SmtpConfig = NonNullable<MailConfig['smtp']>;

export interface SentMail {
  messageId: string;
  /** The SMTP server's answer, or `mailbox:<id>`. */
  response: string;
}

export interface MailTransport {
  readonly kind: 'smtp' | 'mailbox';
  /** Where mail goes, for logs and the CLI (`smtp://host:587`, or the mailbox directory); no secrets. */
  readonly description: string;
  /** Builds and delivers one message; throws what the server or the file system said. */
  send(message: MailMessage): Promise<SentMail>;
  /** Makes a send error safe to store and to log (no password, no full address). */
  describeError(err: unknown): SendFailure;
  close(): void;
}

export interface TransportOptions {
  /** Where TASKFLOW_SMTP_PASSWORD is read from (default process.env). */
  env?: NodeJS.ProcessEnv;
  /** Milliseconds to connect, to get the greeting, and of silence on the socket (default 10 s, 10 s, 60 s). */
  timeouts?: { connectMs?: number; greetingMs?: number; socketMs?: number };
}

/**
 * The SMTP password: env TASKFLOW_SMTP_PASSWORD, else the file mail.smtp.passwordFile names (one
 * trailing newline ignored). Throws ConfigError when a user is set without one, or the other way round.
 */
export function smtpPassword(smtp: SmtpConfig, env: NodeJS.ProcessEnv = process.env): string | undefined {
  let password: string | undefined;
  const fromEnv = env.TASKFLOW_SMTP_PASSWORD;
  if (fromEnv !== undefined && fromEnv !== '') {
    password = fromEnv;
  } else if (smtp.passwordFile !== undefined) {
    try {
      password = readFileSync(smtp.passwordFile, 'utf8').replace(/\r?\n$/, '');
    } catch (err) {
      throw new ConfigError(`mail.smtp.passwordFile: cannot read ${smtp.passwordFile} (${(err as NodeJS.ErrnoException).code ?? 'error'})`);
    }
    if (password.length === 0) throw new ConfigError(`mail.smtp.passwordFile: ${smtp.passwordFile} is empty`);
  }
  if (smtp.user !== undefined && password === undefined) {
    throw new ConfigError('mail.smtp.user is set but there is no password: set TASKFLOW_SMTP_PASSWORD or mail.smtp.passwordFile');
  }
  if (smtp.user === undefined && password !== undefined) {
    throw new ConfigError('an SMTP password is set (TASKFLOW_SMTP_PASSWORD or mail.smtp.passwordFile) but mail.smtp.user is not');
  }
  return password;
}

function senderOf(config: MailConfig): MailAddress {
  const sender = parseSender(config.from);
  if (!sender) throw new ConfigError(`mail.from: '${config.from}' is not 'Name <local@domain>' or 'local@domain'`);
  return sender;
}

/** The nodemailer message for one of ours: no file or URL access, marked as automatic (RFC 3834). */
function mailOptions(from: MailAddress, message: MailMessage): SendMailOptions {
  return {
    from,
    to: message.to,
    subject: message.subject,
    text: message.text,
    ...(message.html === undefined ? {} : { html: message.html }),
    headers: { 'Auto-Submitted': 'auto-generated', 'X-Auto-Response-Suppress': 'All' },
    disableFileAccess: true,
    disableUrlAccess: true,
  };
}

function smtpTransport(config: MailConfig, smtp: SmtpConfig, options: TransportOptions): MailTransport {
  const from = senderOf(config);
  const password = smtpPassword(smtp, options.env);
  const secrets = password === undefined ? [] : [{ user: smtp.user, password }];
  const settings: SMTPTransportOptions = {
    host: smtp.host,
    port: smtp.port,
    secure: smtp.secure,
    requireTLS: smtp.requireTLS,
    ...(smtp.user !== undefined && password !== undefined ? { auth: { user: smtp.user, pass: password } } : {}),
    tls: { rejectUnauthorized: smtp.rejectUnauthorized, minVersion: 'TLSv1.2' },
    connectionTimeout: options.timeouts?.connectMs ?? 10_000,
    greetingTimeout: options.timeouts?.greetingMs ?? 10_000,
    socketTimeout: options.timeouts?.socketMs ?? 60_000,
    disableFileAccess: true,
    disableUrlAccess: true,
    logger: false,
    debug: false,
  };
  const transporter = nodemailer.createTransport(settings);
  const tls = smtp.secure ? ', TLS' : smtp.requireTLS ? ', STARTTLS required' : '';
  return {
    kind: 'smtp',
    description: `smtp://${smtp.host.includes(':') ? `[${smtp.host}]` : smtp.host}:${smtp.port}${tls}${smtp.user === undefined ? '' : `, as ${smtp.user}`}`,
    async send(message) {
      const info = await transporter.sendMail(mailOptions(from, message));
      return { messageId: info.messageId, response: info.response };
    },
    describeError: (err) => describeSendError(err, secrets),
    close() {
      transporter.close();
    },
  };
}

function mailboxTransport(config: MailConfig, dataDir: string): MailTransport {
  const from = senderOf(config);
  const mailbox = new LocalMailbox(mailboxDir(dataDir));
  // Builds the message without sending it anywhere; CRLF line ends as RFC 5322 has them.
  const builder = nodemailer.createTransport({ streamTransport: true, buffer: true, newline: 'windows' });
  return {
    kind: 'mailbox',
    description: `local mailbox ${mailbox.dir}`,
    async send(message) {
      const info = await builder.sendMail(mailOptions(from, message));
      if (!Buffer.isBuffer(info.message)) throw new Error('nodemailer returned no message buffer');
      const entry = await mailbox.deliver(
        info.message,
        { from: config.from, to: message.to, subject: message.subject, kind: message.kind, tenantId: message.tenantId ?? null, messageId: info.messageId },
        { text: message.text, html: message.html ?? null },
      );
      return { messageId: info.messageId, response: `mailbox:${entry.id}` };
    },
    describeError: (err) => describeSendError(err),
    close() {
      builder.close();
    },
  };
}

/**
 * The transport the configuration asks for: SMTP when `mail.smtp` is set, else the local mailbox in
 * `<dataDir>/mail/`. Reads the SMTP password now, so a missing one fails at start, not at first send.
 */
export function createTransport(config: MailConfig, dataDir: string, options: TransportOptions = {}): MailTransport {
  return config.smtp ? smtpTransport(config, config.smtp, options) : mailboxTransport(config, dataDir);
}
