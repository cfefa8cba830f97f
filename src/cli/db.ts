/** `taskflow db url` and `taskflow db psql`: the cluster as its administrator, or as one tenant. */
import { spawn } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Command } from 'commander';
import { CONTROL_DB } from '../platform/control-plane.ts';
import { connectionUrl, libpqTlsEnvironment, type ConnectionTarget } from '../platform/postgres/connection.ts';
import { tenantDbPassword } from '../platform/tenants/credentials.ts';
import { requireTenant } from '../platform/tenants/lifecycle.ts';
import type { Platform } from '../platform/platform.ts';
import { withGlobalOptions, withPlatform, type GlobalOptions } from './context.ts';
import { printJson } from './output.ts';

interface Login {
  database: string;
  user: string;
  password: string;
}

async function loginFor(platform: Platform, tenantSlug: string | undefined): Promise<Login> {
  if (!tenantSlug) return { database: CONTROL_DB, user: platform.target.user, password: platform.target.password };
  const t = await requireTenant(platform, tenantSlug);
  return { database: t.databaseName, user: t.loginRole, password: tenantDbPassword(platform.masterKey, t.id, t.credentialVersion) };
}

/** A libpq password file line; `:` and `\` are escaped as the format requires. */
function passfileLine(target: ConnectionTarget, login: Login): string {
  const esc = (s: string) => s.replaceAll('\\', '\\\\').replaceAll(':', '\\:');
  return `${esc(target.host)}:${target.port}:${esc(login.database)}:${esc(login.user)}:${esc(login.password)}\n`;
}

export function dbCommand(): Command {
  const db = new Command('db').description('reach the PostgreSQL cluster directly');

  withGlobalOptions(db.command('url'))
    .description('print a connection URL (it contains the password: treat the output as a secret)')
    .option('--tenant <slug>', "the tenant's login role and database instead of the administrator")
    .option('--json', 'print JSON')
    .action(async (opts: GlobalOptions & { tenant?: string; json?: boolean }) => {
      await withPlatform(opts, async (platform) => {
        const login = await loginFor(platform, opts.tenant);
        const url = connectionUrl(platform.target, login.database, { user: login.user, password: login.password });
        if (opts.json) printJson({ url, host: platform.target.host, port: platform.target.port, database: login.database, user: login.user });
        else process.stdout.write(url + '\n');
      });
    });

  withGlobalOptions(db.command('psql'))
    .description('open psql as the administrator (control database) or as a tenant; the password goes through a temporary passfile, never the command line; TLS as TaskFlow connects (verify-full to a node on another machine)')
    .option('--tenant <slug>', "connect as the tenant's login role to its database")
    .argument('[psql-args...]', 'extra arguments for psql (after --)')
    .action(async (psqlArgs: string[], opts: GlobalOptions & { tenant?: string }) => {
      const code = await withPlatform(opts, async (platform) => {
        const login = await loginFor(platform, opts.tenant);
        const dir = mkdtempSync(join(tmpdir(), 'taskflow-psql-'));
        const passfile = join(dir, 'pgpass');
        writeFileSync(passfile, passfileLine(platform.target, login), { mode: 0o600 });
        try {
          return await new Promise<number>((resolve, reject) => {
            const child = spawn(
              platform.tools.path('psql'),
              ['--host', platform.target.host, '--port', String(platform.target.port), '--username', login.user, '--dbname', login.database, ...psqlArgs],
              { stdio: 'inherit', env: { ...process.env, PGPASSFILE: passfile, PGPASSWORD: undefined, PGSSLMODE: undefined, PGSSLROOTCERT: undefined, ...libpqTlsEnvironment(platform.target) } },
            );
            child.on('error', reject);
            child.on('exit', (status) => {
              resolve(status ?? 1);
            });
          });
        } finally {
          rmSync(dir, { recursive: true, force: true });
        }
      });
      process.exitCode = code;
    });

  return db;
}
