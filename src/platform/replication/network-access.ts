/**
 * The managed primary follows the network settings (postgres.listenAddresses, postgres.hostNames,
 * postgres.allowedNetworks) at every start: listen_addresses in taskflow.conf, the pg_hba block
 * (access.ts), and a server certificate naming every address and name. A changed pg_hba or
 * certificate takes a reload; a changed listen_addresses takes a restart, which is logged as a
 * warning (the CLI shows it). A cluster never opened beyond loopback is left as it is, and so is a
 * primary on another machine.
 */
import { existsSync } from 'node:fs';
import type { Logger } from 'pino';
import type { LocalCluster } from '../postgres/local-cluster.ts';
import { isExposed, listenAddressesOf, sameAddresses } from '../postgres/network.ts';
import { assertTlsWorks, ensureReplicationFiles, replicationFiles, replicationHbaLines, serverCertificateCurrent, setTlsSettings, type FilesContext } from './access.ts';
import { withNodeClient } from './probe.ts';
import { RemoteCluster } from './remote-cluster.ts';
import { readTopology } from './topology.ts';

export interface NetworkApplied {
  /** listen_addresses before and after, when it changed (PostgreSQL was restarted). */
  restarted: { from: string; to: string } | null;
  /** pg_hba.conf or the certificate changed (PostgreSQL reloaded its configuration). */
  reloaded: boolean;
}

/** Brings the running primary in line with the network settings; see the module comment. */
export async function applyClusterNetwork(ctx: FilesContext & { log: Logger; mainPort: number }, cluster: LocalCluster): Promise<NetworkApplied> {
  // The settings name this machine's addresses; a primary on another machine keeps its own.
  if (cluster instanceof RemoteCluster) return { restarted: null, reloaded: false };
  const network = ctx.config.postgres;
  const exposed = isExposed(network);
  const files = replicationFiles(ctx);
  const hadCertificate = existsSync(files.serverCert);
  const current = await withNodeClient(cluster, async (c) => {
    const r = await c.query<{ listen: string; ssl: string }>("SELECT current_setting('listen_addresses') AS listen, current_setting('ssl') AS ssl");
    return r.rows[0] ?? { listen: '', ssl: 'off' };
  });
  const wantListen = listenAddressesOf(network);
  const listenChanged = !sameAddresses(current.listen.split(','), wantListen);
  const block = cluster.hbaBlock('replication');
  if (!exposed && !hadCertificate && block === null && !listenChanged) return { restarted: null, reloaded: false };

  let reload = false;
  const lines = replicationHbaLines(network);
  if (block === null || block.join('\n') !== lines.join('\n')) {
    cluster.writeHbaBlock('replication', lines);
    reload = true;
  }
  if (exposed || hadCertificate) {
    if (!hadCertificate || !serverCertificateCurrent(ctx)) {
      await ensureReplicationFiles(ctx, readTopology(ctx.dir, ctx.mainPort).credentialVersion);
      reload = true;
      ctx.log.info({ certificate: files.serverCert }, 'the server certificate was made again for the configured addresses and names');
    }
    // hostssl lines need TLS on: a cluster opened to other machines before any standby existed.
    if (current.ssl !== 'on') {
      await withNodeClient(cluster, (c) => setTlsSettings(c, files));
      reload = true;
    }
  }
  if (listenChanged) {
    cluster.writeSettings(wantListen);
    await cluster.restart();
    ctx.log.warn({ from: current.listen, to: wantListen.join(',') }, `listen_addresses changed from '${current.listen}' to '${wantListen.join(',')}': PostgreSQL was restarted`);
  } else if (reload) {
    await withNodeClient(cluster, (c) => c.query('SELECT pg_reload_conf()'));
    ctx.log.info('pg_hba.conf and TLS follow the network settings (reloaded, no restart)');
  }
  if (exposed && (reload || listenChanged)) await assertTlsWorks(cluster, files);
  return { restarted: listenChanged ? { from: current.listen, to: wantListen.join(',') } : null, reloaded: reload && !listenChanged };
}
