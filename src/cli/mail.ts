/** `taskflow mail …`: the local mailbox (list, show), where mail goes without SMTP, and the outbox. */
import { Command } from 'commander';
import { UserError } from '../errors.ts';
import { isMailboxId, LocalMailbox, mailboxDir } from '../platform/mail/mailbox.ts';
import { outboxSummary, type OutboxProblem } from '../platform/mail/outbox.ts';
import { configFrom, withGlobalOptions, withPlatform, type GlobalOptions } from './context.ts';
import { note, printFields, printJson, printTable } from './output.ts';

type Opts = GlobalOptions & { json?: boolean };

function leaf(parent: Command, name: string, description: string): Command {
  return withGlobalOptions(parent.command(name).description(description));
}

function problemRows(problems: OutboxProblem[]): (string | number | null)[][] {
  return problems.map((p) => [p.id, p.kind, p.to, p.attempts, p.at.toISOString(), p.error]);
}

export function mailCommand(): Command {
  const mail = new Command('mail').description('read the local mailbox (where mail goes when no SMTP server is configured) and check the outbox');

  leaf(mail, 'list', 'list the messages in the local mailbox, oldest first')
    .option('--json', 'print JSON')
    .action(async (opts: Opts) => {
      const config = configFrom(opts);
      const mailbox = new LocalMailbox(mailboxDir(config.dataDir));
      const entries = await mailbox.list();
      if (opts.json) printJson(entries);
      else {
        printTable(['id', 'date', 'to', 'subject'], entries.map((e) => [e.id, e.date, e.to, e.subject]));
        if (entries.length > 0) note(`'taskflow mail show ID' prints one of them`);
      }
      if (config.mail.smtp && !opts.json) note(`mail goes out over SMTP (${config.mail.smtp.host}:${config.mail.smtp.port}); the local mailbox holds only what was written before that was configured`);
    });

  leaf(mail, 'show', 'print one message of the local mailbox, with its text (links intact)')
    .argument('<id>', "a message id from 'taskflow mail list', or 'latest'")
    .option('--json', 'print JSON (with the HTML part, if any)')
    .action(async (id: string, opts: Opts) => {
      const config = configFrom(opts);
      const mailbox = new LocalMailbox(mailboxDir(config.dataDir));
      const wanted = id === 'latest' ? (await mailbox.list()).at(-1)?.id : id;
      if (wanted === undefined) throw new UserError(`the local mailbox ${mailbox.dir} is empty`, 3);
      if (!isMailboxId(wanted)) throw new UserError(`'${id}' is not a message id; 'taskflow mail list' shows them`, 2);
      const message = await mailbox.read(wanted);
      if (!message) throw new UserError(`no message '${wanted}' in the local mailbox ${mailbox.dir}`, 3);
      if (opts.json) {
        printJson(message);
        return;
      }
      printFields([
        ['from', message.from],
        ['to', message.to],
        ['date', message.date],
        ['subject', message.subject],
        ['kind', message.kind],
        ['file', message.emlPath],
      ]);
      process.stdout.write(`\n${message.text}${message.text.endsWith('\n') ? '' : '\n'}`);
    });

  leaf(mail, 'outbox', 'count queued, sent and failed messages, and show the failed and retrying ones with their errors')
    .option('--json', 'print JSON')
    .action(async (opts: Opts) => {
      await withPlatform(opts, async (platform) => {
        const summary = await outboxSummary(platform.control);
        if (opts.json) {
          printJson(summary);
          return;
        }
        printFields(Object.entries(summary.counts));
        if (summary.retrying.length > 0) {
          process.stdout.write('\nretrying:\n');
          printTable(['id', 'kind', 'to', 'attempts', 'next attempt', 'last error'], problemRows(summary.retrying));
        }
        if (summary.failed.length > 0) {
          process.stdout.write('\nfailed:\n');
          printTable(['id', 'kind', 'to', 'attempts', 'failed at', 'error'], problemRows(summary.failed));
        }
      });
    });

  return mail;
}
