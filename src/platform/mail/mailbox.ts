/**
 * The local mailbox: where mail goes when no SMTP server is configured, so a first run works as
 * is and its administrator can read setup links with `taskflow mail`.
 *
 *   <dataDir>/mail/                 0700
 *   <dataDir>/mail/<id>.eml         0600, the message exactly as it would have gone out (RFC 5322)
 *   <dataDir>/mail/<id>.json        0600, its index entry: envelope, subject and the decoded text,
 *                                   because the .eml's quoted-printable breaks long links
 *
 * Each file is written under a temporary name and renamed, and the index entry last, so a listed
 * message is always complete.
 */
import { randomBytes } from 'node:crypto';
import { chmod, mkdir, readdir, readFile, rename, writeFile } from 'node:fs/promises';
import { join } from 'node:path';

export interface MailboxEntry {
  id: string;
  /** When it was delivered, ISO 8601. */
  date: string;
  from: string;
  to: string;
  subject: string;
  kind: string;
  tenantId: string | null;
  messageId: string;
}

export interface MailboxMessage extends MailboxEntry {
  text: string;
  html: string | null;
  /** Path of the RFC 5322 file, to open in a mail client. */
  emlPath: string;
}

const ID = /^\d{8}-\d{6}-[0-9a-f]{8}$/;

/** The mailbox directory inside a data directory. */
export function mailboxDir(dataDir: string): string {
  return join(dataDir, 'mail');
}

/** Whether `id` has the shape of a mailbox id (and so cannot name a path outside the mailbox). */
export function isMailboxId(id: string): boolean {
  return ID.test(id);
}

function newId(now: Date): string {
  const stamp = now.toISOString().replace(/[-:]/g, '').replace('T', '-').slice(0, 15);
  return `${stamp}-${randomBytes(4).toString('hex')}`;
}

async function writeAtomically(path: string, data: string | Buffer): Promise<void> {
  const tmp = `${path}.tmp`;
  await writeFile(tmp, data, { mode: 0o600 });
  await rename(tmp, path);
}

function isEntry(value: unknown): value is MailboxMessage {
  if (typeof value !== 'object' || value === null) return false;
  const v = value as Record<string, unknown>;
  return ['id', 'date', 'from', 'to', 'subject', 'kind', 'messageId', 'text'].every((k) => typeof v[k] === 'string');
}

export class LocalMailbox {
  readonly dir: string;
  /** Time of the last delivery here; the next is at least 1 ms later, so dates order messages. */
  #lastMs = 0;

  constructor(dir: string) {
    this.dir = dir;
  }

  /** Stores one built message with its index entry; returns the entry. */
  async deliver(raw: Buffer, entry: Omit<MailboxEntry, 'id' | 'date'>, body: { text: string; html: string | null }): Promise<MailboxEntry> {
    await mkdir(this.dir, { recursive: true, mode: 0o700 });
    await chmod(this.dir, 0o700);
    const now = new Date(Math.max(Date.now(), this.#lastMs + 1));
    this.#lastMs = now.getTime();
    const stored: MailboxEntry = { id: newId(now), date: now.toISOString(), ...entry };
    await writeAtomically(join(this.dir, `${stored.id}.eml`), raw);
    await writeAtomically(join(this.dir, `${stored.id}.json`), JSON.stringify({ ...stored, ...body }, null, 2) + '\n');
    return stored;
  }

  /** Every message, oldest first; an empty list when nothing was ever delivered here. */
  async list(): Promise<MailboxEntry[]> {
    let files: string[];
    try {
      files = await readdir(this.dir);
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code === 'ENOENT') return [];
      throw err;
    }
    const ids = files.filter((f) => f.endsWith('.json')).map((f) => f.slice(0, -'.json'.length)).filter(isMailboxId);
    const entries: MailboxEntry[] = [];
    for (const id of ids) {
      const message = await this.read(id);
      if (message) {
        const { text: _text, html: _html, emlPath: _emlPath, ...entry } = message;
        entries.push(entry);
      }
    }
    return entries.sort((a, b) => a.date.localeCompare(b.date) || a.id.localeCompare(b.id));
  }

  /** One message with its text; null when there is no such (or no well-formed) message. */
  async read(id: string): Promise<MailboxMessage | null> {
    if (!isMailboxId(id)) return null;
    let parsed: unknown;
    try {
      parsed = JSON.parse(await readFile(join(this.dir, `${id}.json`), 'utf8'));
    } catch (err) {
      // A missing or half-written entry is no message; anything else (permissions) is reported.
      if ((err as NodeJS.ErrnoException).code === 'ENOENT' || err instanceof SyntaxError) return null;
      throw err;
    }
    if (!isEntry(parsed) || parsed.id !== id) return null;
    return {
      id: parsed.id,
      date: parsed.date,
      from: parsed.from,
      to: parsed.to,
      subject: parsed.subject,
      kind: parsed.kind,
      tenantId: typeof parsed.tenantId === 'string' ? parsed.tenantId : null,
      messageId: parsed.messageId,
      text: parsed.text,
      html: typeof parsed.html === 'string' ? parsed.html : null,
      emlPath: join(this.dir, `${id}.eml`),
    };
  }
}
