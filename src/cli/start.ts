/** `taskflow start`: the managed cluster (initialised on first run), the control plane and the HTTP server. */
import type { Server } from 'node:http';
import { Command } from 'commander';
import { createRedirectServer } from '../app/https.ts';
import { loadTls } from '../platform/tls/certificates.ts';
import type { FastifyInstance } from 'fastify';
import { createLogger } from '../platform/log.ts';
import { openPlatform } from '../platform/platform.ts';
import { acquireServerLock, dataDirLayout, prepareDataDir } from '../platform/data-dir.ts';
import { DEMO_OWNER_EMAIL, ensureDemoTenant } from '../platform/tenants/demo.ts';
import { issueSetupLink } from '../app/accounts/setup.ts';
import { startMail, type MailService } from '../platform/mail/index.ts';
import { startBackupJobs, type BackupJobs } from '../platform/backup/schedule.ts';
import { checkBackupPlacement } from '../platform/backup/placement.ts';
import type { MetricsServer } from '../app/metrics-server.ts';
import { readMetricsToken } from '../platform/metrics/token.ts';
import { configFrom, withGlobalOptions, type GlobalOptions } from './context.ts';
import { note } from './output.ts';
import { tenantUrl } from '../platform/tenants/urls.ts';

type StartOptions = GlobalOptions & { demo?: boolean; host?: string; port?: string; httpsPort?: string; tls?: string; baseDomain?: string };

function boundPort(address: ReturnType<Server['address']>, fallback: number): number {
  return address && typeof address === 'object' ? address.port : fallback;
}

function listenRedirect(server: Server, host: string, port: number): Promise<Server> {
  return new Promise((resolve, reject) => {
    server.once('error', reject);
    server.listen(port, host, () => {
      server.off('error', reject);
      resolve(server);
    });
  });
}

export function startCommand(): Command {
  return withGlobalOptions(new Command('start'))
    .description('start TaskFlow: PostgreSQL (initialised on first run unless --database-url), then the server')
    .option('--demo', "create a 'demo' tenant with sample data if there is none, and print its URL")
    .option('--host <address>', 'address to listen on (env TASKFLOW_HOST; default 127.0.0.1)')
    .option('--port <port>', 'plain HTTP port, which only redirects to HTTPS unless --tls off (env TASKFLOW_PORT; default 8080)')
    .option('--https-port <port>', 'HTTPS port (env TASKFLOW_HTTPS_PORT; default 8443)')
    .option('--tls <mode>', 'self-signed, files, proxy or off (env TASKFLOW_TLS_MODE; default self-signed)')
    .option('--base-domain <domain>', 'tenants are served at <slug>.<base-domain> (env TASKFLOW_BASE_DOMAIN; default localhost)')
    .action(async (opts: StartOptions) => {
      const config = configFrom(opts, {
        'server.host': opts.host,
        'server.port': opts.port,
        'server.baseDomain': opts.baseDomain,
        'server.tls.port': opts.httpsPort,
        'server.tls.mode': opts.tls,
      });
      const log = createLogger({ level: config.logLevel });
      // Read before PostgreSQL starts: a token file other users can read stops the start at once.
      const metricsToken = config.metrics.enabled && config.metrics.tokenFile ? readMetricsToken(config.metrics.tokenFile) : null;
      // Loaded here so that other commands do not pay for the HTTP stack.
      const { buildServer } = await import('../app/server.ts');
      prepareDataDir(dataDirLayout(config.dataDir));
      const releaseLock = acquireServerLock(dataDirLayout(config.dataDir));
      process.on('exit', releaseLock);
      const platform = await openPlatform(config, { log, initialise: true });
      let mail: MailService | null = null;
      let backupJobs: BackupJobs | null = null;
      let server: FastifyInstance | null = null;
      let redirect: Server | null = null;
      let metrics: MetricsServer | null = null;
      let stopping = false;
      const stop = async (signal: string) => {
        if (stopping) {
          note(`${signal} again: exiting now`);
          process.exit(130);
        }
        stopping = true;
        log.info({ signal }, 'shutting down');
        try {
          redirect?.close();
          await metrics?.close();
          await server?.close();
          await backupJobs?.stop();
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
        // Scheduled backups, only when backup repositories are configured (docs/backups.md).
        backupJobs = await startBackupJobs(platform);
        if (!backupJobs) note('WARNING: backups are NOT configured: nothing is backed up and nothing alerts about it; configure backup.repositories and backup.recipients (docs/backups.md).');
        // P8: a copy besides the primary and one in another region; missing ones warn, they do not stop the start.
        for (const warning of await checkBackupPlacement(platform)) note(`WARNING: ${warning}`);
        const tls = await loadTls(config, log);
        server = await buildServer({ platform, tls });
        // The operator's metrics listener, on its own address (never the app's); it measures the app's requests too.
        if (config.metrics.enabled) metrics = await (await import('../app/metrics-server.ts')).startMetricsServer({ platform, app: server, token: metricsToken });
        const { host } = config.server;
        await server.listen({ host, port: tls ? config.server.tls.port : config.server.port });
        const mainPort = boundPort(server.server.address(), tls ? config.server.tls.port : config.server.port);
        if (tls) redirect = await listenRedirect(createRedirectServer({ baseDomain: config.server.baseDomain, httpsPort: mainPort }), host, config.server.port);
        const listening = tls ? { tlsPort: mainPort } : { port: mainPort };
        note(`TaskFlow is running (data in ${config.dataDir}; PostgreSQL ${platform.cluster ? `managed on ${platform.target.host === '127.0.0.1' ? 'port ' : `${platform.target.host}:`}${platform.target.port}` : `at ${platform.target.host}:${platform.target.port}`}).`);
        if (tls) {
          const trust = tls.issuer ? `certificates from the local authority ${tls.issuer.certPath}: trust it once` : tls.certPath;
          note(`HTTPS on ${host}:${mainPort} (${trust}); HTTP on port ${config.server.port} only redirects.`);
        }
        if (demo) {
          const url = tenantUrl(config, demo.tenant.slug, listening);
          const cacert = tls?.issuer ? `--cacert ${tls.issuer.certPath} ` : '';
          note(`Demo tenant: ${url}`);
          if (demo.apiToken) {
            note(`Demo API token (shown once): ${demo.apiToken}\n  try: curl ${cacert}-H 'Authorization: Bearer ${demo.apiToken}' ${url}api/tasks`);
            note(`Demo owner ${DEMO_OWNER_EMAIL}: a one-time setup link was mailed; read it with 'npx taskflow mail show latest'`);
          } else note(`  (its API token was printed on first start; 'taskflow tenant token demo' issues a new one)`);
        }
        if (metrics) note(`Metrics for Prometheus at ${metrics.url}/metrics${config.metrics.tokenFile ? ' (bearer token from metrics.tokenFile)' : ''}.`);
        note('Press Ctrl-C to stop.');
      } catch (err) {
        redirect?.close();
        await metrics?.close().catch(() => undefined);
        await server?.close().catch(() => undefined);
        await backupJobs?.stop().catch(() => undefined);
        await mail?.close().catch(() => undefined);
        await platform.close({ stopCluster: true }).catch(() => undefined);
        throw err;
      }
    });
}
