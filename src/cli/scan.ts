/**
 * `taskflow scan`: the dynamic security checks against any deployment, with a prepared test tenant.
 * Passwords and tokens come from files or the environment, never the command line.
 */
import { readFileSync, writeFileSync } from 'node:fs';
import { Command } from 'commander';
import { UserError } from '../errors.ts';
import { ALL_CHECKS } from '../scan/checks/index.ts';
import { runScan } from '../scan/scan.ts';
import type { CheckOutcome, ScanTenant } from '../scan/types.ts';
import { note, printJson, printTable } from './output.ts';

interface ScanOptions {
  url: string;
  email: string;
  passwordFile?: string;
  tokenFile?: string;
  otherUrl?: string;
  otherEmail?: string;
  otherPasswordFile?: string;
  otherTokenFile?: string;
  ca?: string;
  connectTo?: string;
  allowMissingHsts?: boolean;
  only?: string;
  json?: boolean;
  out?: string;
}

function secret(file: string | undefined, env: string, what: string, required: boolean): string | undefined {
  if (file !== undefined) {
    try {
      return readFileSync(file, 'utf8').trim();
    } catch (err) {
      throw new UserError(`cannot read the ${what} file ${file}: ${(err as NodeJS.ErrnoException).code ?? (err as Error).message}`, 2);
    }
  }
  const value = process.env[env];
  if (value) return value;
  if (required) throw new UserError(`give the ${what} in a file (--${what.replaceAll(' ', '-')}-file) or in ${env}; never on the command line`, 2);
  return undefined;
}

function tenantUrl(value: string, option: string): string {
  let url: URL;
  try {
    url = new URL(value);
  } catch {
    throw new UserError(`${option}: not a URL: ${value}`, 2);
  }
  if (url.protocol !== 'https:' && url.protocol !== 'http:') throw new UserError(`${option}: must be https:// (or http://)`, 2);
  return url.origin;
}

function line(o: CheckOutcome): (string | number)[] {
  return [o.id, o.status.toUpperCase(), o.severity, o.probes, `${o.ms} ms`, o.findings[0] ?? ''];
}

export function scanCommand(): Command {
  return new Command('scan')
    .description('run the dynamic security checks against a TaskFlow deployment (use a prepared test tenant: the scan creates and deletes probe projects and sends reset mails to the scan user)')
    .requiredOption('--url <url>', "the test tenant's address, e.g. https://scan.taskflow.example.com")
    .requiredOption('--email <address>', 'a member of that tenant without a second factor')
    .option('--password-file <file>', 'file holding its password (or env TASKFLOW_SCAN_PASSWORD)')
    .option('--token-file <file>', "file holding the tenant's API token (or env TASKFLOW_SCAN_TOKEN); without one the API is scanned as the signed-in user")
    .option('--other-url <url>', 'a second tenant of the same deployment, for the cross-tenant checks')
    .option('--other-email <address>', 'a member of the second tenant')
    .option('--other-password-file <file>', 'its password (or env TASKFLOW_SCAN_OTHER_PASSWORD)')
    .option('--other-token-file <file>', "the second tenant's API token (or env TASKFLOW_SCAN_OTHER_TOKEN)")
    .option('--ca <file>', 'PEM certificate(s) to trust, e.g. <data-dir>/tls/ca.crt of a self-signed install')
    .option('--connect-to <address>', 'connect to this address instead of resolving the host names (like curl --resolve)')
    .option('--allow-missing-hsts', 'do not require Strict-Transport-Security (self-signed installs send none)')
    .option('--only <ids>', `comma-separated checks: ${ALL_CHECKS.map((c) => c.id).join(', ')}`)
    .option('--json', 'print the report as JSON')
    .option('--out <file>', 'also write the JSON report to this file')
    .action(async (opts: ScanOptions) => {
      const tenant: ScanTenant = {
        url: tenantUrl(opts.url, '--url'),
        user: { email: opts.email, password: secret(opts.passwordFile, 'TASKFLOW_SCAN_PASSWORD', 'password', true) ?? '' },
        token: secret(opts.tokenFile, 'TASKFLOW_SCAN_TOKEN', 'token', false),
      };
      let other: ScanTenant | undefined;
      if (opts.otherUrl !== undefined) {
        if (opts.otherEmail === undefined) throw new UserError('--other-url needs --other-email', 2);
        other = {
          url: tenantUrl(opts.otherUrl, '--other-url'),
          user: { email: opts.otherEmail, password: secret(opts.otherPasswordFile, 'TASKFLOW_SCAN_OTHER_PASSWORD', 'other password', true) ?? '' },
          token: secret(opts.otherTokenFile, 'TASKFLOW_SCAN_OTHER_TOKEN', 'other token', false),
        };
      }
      const only = opts.only?.split(',').map((s) => s.trim());
      const unknown = only?.filter((id) => !ALL_CHECKS.some((c) => c.id === id)) ?? [];
      if (unknown.length > 0) throw new UserError(`--only: unknown check(s) ${unknown.join(', ')}`, 2);
      const ca = opts.ca === undefined ? undefined : readFileSync(opts.ca, 'utf8');
      const report = await runScan({
        target: { tenant, other, allowMissingHsts: opts.allowMissingHsts === true },
        client: { ca, connectTo: opts.connectTo },
        ...(only ? { checks: ALL_CHECKS.filter((c) => only.includes(c.id)) } : {}),
        onCheck: (o) => {
          if (!opts.json) note(`${o.status === 'pass' ? 'ok  ' : o.status === 'skip' ? 'skip' : 'FAIL'}  ${o.id} (${o.probes} probes, ${o.ms} ms)`);
        },
      });
      if (opts.out) writeFileSync(opts.out, JSON.stringify(report, null, 2) + '\n');
      if (opts.json) printJson(report);
      else {
        printTable(['check', 'status', 'severity', 'probes', 'time', 'first finding'], report.checks.map(line));
        for (const o of report.checks.filter((c) => c.status === 'fail')) {
          process.stdout.write(`\n${o.id}: ${o.title}\n${o.findings.map((f) => `  - ${f}`).join('\n')}\n`);
        }
        process.stdout.write(`\n${report.passed} passed, ${report.failed} failed, ${report.skipped} skipped\n`);
      }
      if (report.failed > 0) process.exitCode = 1;
    });
}
