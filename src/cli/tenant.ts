/** `taskflow tenant …`: create, list, show, suspend, resume, rename, delete, token, migrate. */
import { Command } from 'commander';
import cliProgress from 'cli-progress';
import { UserError } from '../errors.ts';
import { tenantMigrations } from '../platform/control-plane.ts';
import { issueApiToken, renameTenant, requireTenant, resumeTenant, suspendTenant } from '../platform/tenants/lifecycle.ts';
import { createTenant, deleteTenant } from '../platform/tenants/provision.ts';
import { listTenants, type Tenant } from '../platform/tenants/registry.ts';
import { migrateTenants, type TenantRolloutResult } from '../platform/tenants/rollout.ts';
import type { Config } from '../config.ts';
import { tenantUrl } from '../platform/tenants/urls.ts';
import { issueSetupLink } from '../app/accounts/setup.ts';
import { deliverQueuedMail } from '../platform/mail/index.ts';
import { normaliseEmail } from '../platform/accounts/email.ts';

/** Delivers queued mail now; says whether it went out or waits for the server (SMTP unreachable). */
async function sentOrQueued(platform: Parameters<typeof deliverQueuedMail>[0]): Promise<string> {
  const pass = await deliverQueuedMail(platform);
  return pass.sent > 0 && pass.retrying === 0 ? 'sent' : 'queued (the running server retries delivery)';
}

/** Refuses a malformed address before anything is done (exit 2). */
function assertEmail(address: string): void {
  const checked = normaliseEmail(address);
  if (!checked.ok) throw new UserError(`${address}: ${checked.reason}`, 2);
}
import { cliActor, withGlobalOptions, withPlatform, type GlobalOptions } from './context.ts';
import { note, printFields, printJson, printTable } from './output.ts';


function tenantJson(config: Config, t: Tenant): Record<string, unknown> {
  return {
    id: t.id,
    slug: t.slug,
    name: t.name,
    status: t.status,
    statusReason: t.statusReason,
    url: tenantUrl(config, t.slug),
    database: t.databaseName,
    ownerRole: t.ownerRole,
    loginRole: t.loginRole,
    schemaVersion: t.schemaVersion,
    aliases: t.aliases.map((a) => ({ slug: a.slug, expiresAt: a.expiresAt.toISOString() })),
    createdAt: t.createdAt.toISOString(),
    updatedAt: t.updatedAt.toISOString(),
  };
}

type Opts = GlobalOptions & { json?: boolean };

function leaf(parent: Command, name: string, description: string): Command {
  return withGlobalOptions(parent.command(name).description(description));
}

export function tenantCommand(): Command {
  const tenant = new Command('tenant').description('create and manage tenants (one database each, on their own subdomain)');

  leaf(tenant, 'create', 'create a tenant: its database, roles and an API token (printed once)')
    .argument('<slug>', 'subdomain label: a-z, 0-9 and -, at most 40 characters')
    .option('--name <name>', 'display name (default: the slug)')
    .option('--owner-email <address>', "mail the first owner a one-time setup link (with no SMTP server: 'taskflow mail list')")
    .option('--json', 'print JSON')
    .action(async (slug: string, opts: Opts & { name?: string; ownerEmail?: string }) => {
      if (opts.ownerEmail !== undefined) assertEmail(opts.ownerEmail);
      await withPlatform(opts, async (platform) => {
        const started = performance.now();
        const { tenant: t, apiToken } = await createTenant({ platform, slug, ...(opts.name ? { name: opts.name } : {}), actor: cliActor() });
        const ms = Math.round(performance.now() - started);
        if (opts.ownerEmail !== undefined) {
          await issueSetupLink({ platform, tenant: t, email: opts.ownerEmail, operator: cliActor() });
          note(`setup link for the first owner ${await sentOrQueued(platform)} to ${opts.ownerEmail}`);
        }
        if (opts.json) printJson({ ...tenantJson(platform.config, t), apiToken, createdInMs: ms });
        else {
          printFields([
            ['tenant', t.slug],
            ['url', tenantUrl(platform.config, t.slug)],
            ['database', t.databaseName],
            ['api token', apiToken],
          ]);
          note(`created in ${ms} ms. The API token is shown only now; 'taskflow tenant token ${t.slug}' issues a new one.`);
        }
      });
    });

  leaf(tenant, 'list', 'list tenants')
    .option('--json', 'print JSON')
    .action(async (opts: Opts) => {
      await withPlatform(opts, async (platform) => {
        const tenants = await listTenants(platform.control);
        if (opts.json) printJson(tenants.map((t) => tenantJson(platform.config, t)));
        else printTable(['slug', 'status', 'schema', 'database', 'url'], tenants.map((t) => [t.slug, t.status, t.schemaVersion, t.databaseName, tenantUrl(platform.config, t.slug)]));
      });
    });

  leaf(tenant, 'show', 'show one tenant')
    .argument('<slug>')
    .option('--json', 'print JSON')
    .action(async (slug: string, opts: Opts) => {
      await withPlatform(opts, async (platform) => {
        const t = await requireTenant(platform, slug);
        if (opts.json) printJson(tenantJson(platform.config, t));
        else {
          printFields([
            ['slug', t.slug],
            ['name', t.name],
            ['id', t.id],
            ['status', t.status + (t.statusReason ? ` (${t.statusReason})` : '')],
            ['url', tenantUrl(platform.config, t.slug)],
            ['database', t.databaseName],
            ['roles', `${t.ownerRole} (owner), ${t.loginRole} (login)`],
            ['schema', t.schemaVersion],
            ['old slugs', t.aliases.map((a) => `${a.slug} until ${a.expiresAt.toISOString()}`).join(', ') || null],
            ['created', t.createdAt.toISOString()],
          ]);
        }
      });
    });

  leaf(tenant, 'setup-link', "mail a tenant's first owner a one-time setup link (an earlier unused one stops working)")
    .argument('<slug>')
    .requiredOption('--email <address>', 'where the link goes')
    .option('--json', 'print JSON')
    .action(async (slug: string, opts: Opts & { email: string }) => {
      assertEmail(opts.email);
      await withPlatform(opts, async (platform) => {
        const invitation = await issueSetupLink({ platform, tenant: await requireTenant(platform, slug), email: opts.email, operator: cliActor() });
        const how = await sentOrQueued(platform);
        if (opts.json) printJson(invitation);
        else note(`setup link ${how} to ${invitation.email}; it works once, until ${invitation.expiresAt}`);
      });
    });

  leaf(tenant, 'suspend', 'suspend a tenant: its subdomain answers 503 until resumed; no data is touched')
    .argument('<slug>')
    .option('--reason <text>', 'why (shown to operators)')
    .option('--json', 'print JSON')
    .action(async (slug: string, opts: Opts & { reason?: string }) => {
      await withPlatform(opts, async (platform) => {
        const t = await suspendTenant({ platform, tenant: await requireTenant(platform, slug), ...(opts.reason ? { reason: opts.reason } : {}), actor: cliActor() });
        if (opts.json) printJson(tenantJson(platform.config, t));
        else note(`tenant ${t.slug} suspended`);
      });
    });

  leaf(tenant, 'resume', 'resume a suspended tenant')
    .argument('<slug>')
    .option('--json', 'print JSON')
    .action(async (slug: string, opts: Opts) => {
      await withPlatform(opts, async (platform) => {
        const t = await resumeTenant({ platform, tenant: await requireTenant(platform, slug), actor: cliActor() });
        if (opts.json) printJson(tenantJson(platform.config, t));
        else note(`tenant ${t.slug} resumed`);
      });
    });

  leaf(tenant, 'rename', 'change a tenant\'s slug; the old one keeps resolving for tenants.renameGraceDays')
    .argument('<slug>')
    .argument('<new-slug>')
    .option('--json', 'print JSON')
    .action(async (slug: string, newSlug: string, opts: Opts) => {
      await withPlatform(opts, async (platform) => {
        const t = await renameTenant({ platform, tenant: await requireTenant(platform, slug), newSlug, actor: cliActor() });
        if (opts.json) printJson(tenantJson(platform.config, t));
        else note(`tenant ${slug} is now ${t.slug} (${tenantUrl(platform.config, t.slug)}); ${slug} keeps resolving for ${platform.config.tenants.renameGraceDays} days`);
      });
    });

  leaf(tenant, 'delete', 'delete a tenant for good: drops its database and roles')
    .argument('<slug>')
    .option('--yes', 'confirm: this cannot be undone')
    .action(async (slug: string, opts: Opts & { yes?: boolean }) => {
      if (!opts.yes) throw new UserError(`deleting '${slug}' drops its database and cannot be undone; add --yes to confirm`, 2);
      await withPlatform(opts, async (platform) => {
        await deleteTenant({ platform, tenant: await requireTenant(platform, slug), actor: cliActor() });
        note(`tenant ${slug} deleted`);
      });
    });

  leaf(tenant, 'token', 'issue a new API token for a tenant (printed once)')
    .argument('<slug>')
    .option('--label <label>', 'what the token is for', 'cli')
    .option('--revoke-others', 'revoke every earlier token of the tenant')
    .option('--json', 'print JSON')
    .action(async (slug: string, opts: Opts & { label: string; revokeOthers?: boolean }) => {
      await withPlatform(opts, async (platform) => {
        const token = await issueApiToken({ platform, tenant: await requireTenant(platform, slug), label: opts.label, revokeOthers: opts.revokeOthers ?? false, actor: cliActor() });
        if (opts.json) printJson({ slug, apiToken: token });
        else process.stdout.write(token + '\n');
      });
    });

  leaf(tenant, 'migrate', 'bring every tenant database to the latest schema (one transaction per tenant)')
    .option('--dry-run', 'show what would be applied, change nothing')
    .option('--concurrency <n>', 'tenants migrated at once (default tenants.migrateConcurrency)')
    .option('--only <slugs>', 'comma-separated slugs to migrate')
    .option('--json', 'print JSON')
    .action(async (opts: Opts & { dryRun?: boolean; concurrency?: string; only?: string }) => {
      const concurrency = opts.concurrency === undefined ? undefined : Number(opts.concurrency);
      if (concurrency !== undefined && (!Number.isInteger(concurrency) || concurrency < 1 || concurrency > 64)) {
        throw new UserError('--concurrency must be a whole number from 1 to 64', 2);
      }
      await withPlatform(opts, async (platform) => {
        const bar = !opts.json && process.stderr.isTTY ? new cliProgress.SingleBar({ format: 'migrating {bar} {value}/{total} tenants | {slug}', stream: process.stderr }, cliProgress.Presets.shades_classic) : null;
        const report = await migrateTenants({
          platform,
          migrations: tenantMigrations(),
          dryRun: opts.dryRun ?? false,
          ...(concurrency ? { concurrency } : {}),
          ...(opts.only ? { only: opts.only.split(',').map((s) => s.trim()) } : {}),
          onStart: (total) => bar?.start(total, 0, { slug: '' }),
          onResult: (r: TenantRolloutResult) => {
            if (bar) bar.increment({ slug: r.slug });
            else if (!opts.json) note(`${r.slug}: ${r.outcome}${r.error ? ` (${r.error})` : ''}`);
          },
        });
        bar?.stop();
        if (opts.json) printJson(report);
        else {
          printTable(['slug', 'outcome', 'from', 'to', 'attempt', 'error'], report.results.map((r) => [r.slug, r.outcome, r.from, r.to, r.attempt, r.error]));
          note(`${report.dryRun ? 'dry run: ' : ''}${report.results.length - report.failed} of ${report.results.length} tenants at or ready for version ${report.targetVersion}; ${report.failed} failed`);
        }
        if (report.failed > 0) {
          throw new UserError(`${report.failed} tenant(s) failed to migrate and were left as they were; see the table above or 'tenant_migrations' in the control database`, 1);
        }
      });
    });

  return tenant;
}
