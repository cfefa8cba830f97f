/** `taskflow start`: the managed cluster (initialised on first run), the control plane and the HTTP server. */
import { Command } from 'commander';
import type { FastifyInstance } from 'fastify';
import { createLogger } from '../platform/log.ts';
import { openPlatform } from '../platform/platform.ts';
import { acquireServerLock, dataDirLayout, prepareDataDir } from '../platform/data-dir.ts';
import { DEMO_OWNER_EMAIL, ensureDemoTenant } from '../platform/tenants/demo.ts';
import { issueSetupLink } from '../app/accounts/setup.ts';
import { startMail, type MailService } from '../platform/mail/index.ts';
import { configFrom, withGlobalOptions, type GlobalOptions } from './context.ts';
import { note } from './output.ts';
import { tenantUrl } from '../platform/tenants/urls.ts';

type StartOptions = GlobalOptions & { demo?: boolean; host?: string; port?: string; baseDomain?: string };

export function startCommand(): Command {
  return withGlobalOptions(new Command('start'))
    .description('start TaskFlow: PostgreSQL (initialised on first run unless --database-url), then the server')
    .option('--demo', "create a 'demo' tenant with sample data if there is none, and print its URL")
    .option('--host <address>', 'address to listen on (env TASKFLOW_HOST; default 127.0.0.1)')
    .option('--port <port>', 'port to listen on (env TASKFLOW_PORT; default 8080)')
    .option('--base-domain <domain>', 'tenants are served at <slug>.<base-domain> (env TASKFLOW_BASE_DOMAIN; default localhost)')
    .action(async (opts: StartOptions) => {
      const config = configFrom(opts, { 'server.host': opts.host, 'server.port': opts.port, 'server.baseDomain': opts.baseDomain });
      const log = createLogger({ level: config.logLevel });
      // Loaded here so that other commands do not pay for the HTTP stack.
      const { buildServer } = await import('../app/server.ts');
      prepareDataDir(dataDirLayout(config.dataDir));
      const releaseLock = acquireServerLock(dataDirLayout(config.dataDir));
      process.on('exit', releaseLock);
      const platform = await openPlatform(config, { log, initialise: true });
      let mail: MailService | null = null;
      let server: FastifyInstance | null = null;
      let stopping = false;
      const stop = async (signal: string) => {
        if (stopping) {
          note(`${signal} again: exiting now`);
          process.exit(130);
        }
        stopping = true;
        log.info({ signal }, 'shutting down');
        try {
          await server?.close();
          await mail?.close();
          await platform.close({ stopCluster: true });
          log.info('stopped cleanly');
          log.flush();
          process.exit(0);
        } catch (err) {
          log.error({ err: (err as Error).message }, 'shutdown failed');
          log.flush();
          process.exit(1);
        }
      };
      process.on('SIGINT', () => void stop('SIGINT'));
      process.on('SIGTERM', () => void stop('SIGTERM'));
      try {
        mail = await startMail(platform);
        const demo = opts.demo ? await ensureDemoTenant(platform) : null;
        // The first start of the demo also mails its owner a setup link (to the local mailbox without SMTP).
        if (demo?.apiToken) await issueSetupLink({ platform, tenant: demo.tenant, email: DEMO_OWNER_EMAIL, operator: 'system:demo' });
        server = await buildServer({ platform });
        await server.listen({ host: config.server.host, port: config.server.port });
        const address = server.server.address();
        const port = address && typeof address === 'object' ? address.port : config.server.port;
        const shown = { ...config, server: { ...config.server, port } };
        note(`TaskFlow is running (data in ${config.dataDir}; PostgreSQL ${platform.cluster ? `managed on port ${platform.target.port}` : `at ${platform.target.host}:${platform.target.port}`}).`);
        if (demo) {
          note(`Demo tenant: ${tenantUrl(shown, demo.tenant.slug)}`);
          if (demo.apiToken) {
            note(`Demo API token (shown once): ${demo.apiToken}\n  try: curl -H 'Authorization: Bearer ${demo.apiToken}' ${tenantUrl(shown, demo.tenant.slug)}api/tasks`);
            note(`Demo owner ${DEMO_OWNER_EMAIL}: a one-time setup link was mailed; read it with 'npx taskflow mail show latest'`);
          }
          else note(`  (its API token was printed on first start; 'taskflow tenant token demo' issues a new one)`);
        }
        note('Press Ctrl-C to stop.');
      } catch (err) {
        await server?.close().catch(() => undefined);
        await mail?.close().catch(() => undefined);
        await platform.close({ stopCluster: true }).catch(() => undefined);
        throw err;
      }
    });
}
