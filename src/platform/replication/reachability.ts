/**
 * Whether a standby on another machine can reach the primary, said before the base backup where it
 * can be known here (the address it would connect to: one the primary's certificate names, and one
 * it listens on now), and after a failed base backup from what PostgreSQL told the standby's side
 * (the address the primary saw it connect from, refused by pg_hba; a connection refused or timed
 * out), instead of pg_basebackup's own words.
 */
import { isIP } from 'node:net';
import { UserError } from '../../errors.ts';
import type { LocalCluster } from '../postgres/local-cluster.ts';
import { canonicalAddress, isLoopback } from '../postgres/network.ts';
import { defaultPrimaryHost, serverHosts } from './access.ts';
import type { ReplicationContext } from './context.ts';
import { withNodeClient } from './probe.ts';
import { RemoteCluster } from './remote-cluster.ts';
import { describeRemote, type RemoteNode } from './remote-shell.ts';
import { isConnectHost, type NodeRecord, type Topology } from './topology.ts';

/**
 * The address standbys on other machines reach `primary` at: the one recorded for it (`connectHost`,
 * from `standby add --remote --primary-host`), else a remote node's own, else the configured
 * default (defaultPrimaryHost).
 */
export function remoteUpstreamHost(ctx: ReplicationContext, primary: LocalCluster, record?: Pick<NodeRecord, 'connectHost'>): string {
  if (record?.connectHost) return record.connectHost;
  return primary instanceof RemoteCluster ? primary.listenAddress : defaultPrimaryHost(ctx.config.postgres);
}

/** The primary's record with `--primary-host` kept as the address other machines reach it at (when given), to merge into the topology's nodes. */
export function recordedConnectHost(topology: Pick<Topology, 'primary' | 'nodes'>, given: string | undefined): Record<string, NodeRecord> {
  const record = topology.nodes[topology.primary];
  return given && record ? { [topology.primary]: { ...record, connectHost: given } } : {};
}

/** What the primary's listen_addresses is now, as a list. */
async function listeningOn(primary: LocalCluster): Promise<string[]> {
  const listen = await withNodeClient(primary, async (c) => (await c.query<{ v: string }>("SELECT current_setting('listen_addresses') AS v")).rows[0]?.v ?? '');
  return listen.split(',').map((a) => a.trim()).filter((a) => a !== '');
}

/**
 * The address standby `name` on `node` is to reach the primary at (`--primary-host`, else the
 * default), refused when it cannot work: not named by the primary's certificate, or loopback for a
 * machine that is not this one (exit 2); not listened on by the running primary (exit 4).
 */
export async function primaryHostFor(ctx: ReplicationContext, primary: LocalCluster, node: RemoteNode, name: string, given?: string): Promise<string> {
  const network = ctx.config.postgres;
  if (given !== undefined && !isConnectHost(given)) throw new UserError(`--primary-host ${JSON.stringify(given)} is not an IP address or DNS name`, 2);
  if (primary instanceof RemoteCluster) return given ?? primary.listenAddress;
  const host = given ?? defaultPrimaryHost(network);
  const served = serverHosts(network);
  const configured = `postgres.listenAddresses ${network.listenAddresses.join(', ') || '(none)'}; postgres.hostNames ${network.hostNames.join(', ') || '(none)'}`;
  if (!served.map(canonicalAddress).includes(canonicalAddress(host))) {
    throw new UserError(
      `--primary-host ${host} is not an address or name the primary serves at (${configured}): its certificate does not name it, so the standby's verify-full would refuse it; add it to postgres.listenAddresses (an address of this machine) or postgres.hostNames (a DNS name), or give one of those`,
      2,
    );
  }
  const elsewhere = !(isLoopback(node.host) || node.host === 'localhost');
  if (elsewhere && (isLoopback(host) || host === 'localhost')) {
    throw new UserError(
      `standby ${name} is on another machine (${describeRemote(node)}), where ${host} is that machine itself, not the primary: set postgres.listenAddresses to an address of this machine that ${node.host} can reach, restart TaskFlow ('taskflow start'), and give it as --primary-host (docs/high-availability.md#a-standby-on-another-machine)`,
      2,
    );
  }
  if (isIP(host)) {
    const listen = await listeningOn(primary);
    const all = listen.some((a) => a === '*' || a === '0.0.0.0' || a === '::');
    if (!all && !listen.map(canonicalAddress).includes(canonicalAddress(host))) {
      const inConfig = network.listenAddresses.map(canonicalAddress).includes(canonicalAddress(host));
      throw new UserError(
        `the primary listens on ${listen.join(', ')} only, not on ${host}, so standby ${name} could not reach it there: ${
          inConfig ? 'postgres.listenAddresses lists it, but PostgreSQL was not restarted since; run \'taskflow start\' (it restarts PostgreSQL with the new addresses)' : `add ${host} to postgres.listenAddresses and run 'taskflow start' (it restarts PostgreSQL with the new addresses)`
        }`,
        4,
      );
    }
  }
  return host;
}

/** A failed base backup from standby `name`'s machine explained, when PostgreSQL's message says why; else null. */
export function explainUnreachable(stderr: string, where: { name: string; node: RemoteNode; host: string; port: number }): UserError | null {
  const { name, node, host, port } = where;
  // No line for that address, or (TaskFlow's block) the line that rejects the replicator from anywhere else.
  const hba = /(?:no pg_hba\.conf entry for|pg_hba\.conf rejects) replication connection (?:from|for) host "([^"]+)"/.exec(stderr);
  if (hba?.[1]) {
    return new UserError(
      `the primary (${host}:${port}) does not allow replication from ${hba[1]}, the address standby ${name} connects from as the primary sees it: add ${hba[1]} (or its network) to postgres.allowedNetworks.replication and run the command again`,
      4,
    );
  }
  const certificate = /does not match host name "([^"]+)"/.exec(stderr);
  if (certificate?.[1]) {
    return new UserError(`the primary's certificate does not name ${certificate[1]}, the address standby ${name} connects to: add it to postgres.listenAddresses or postgres.hostNames and run the command again`, 4);
  }
  const network = /(Connection refused|timeout expired|Connection timed out|No route to host|Network is unreachable|could not translate host name "[^"]*" to address[^\n]*)/.exec(stderr);
  if (network?.[1]) {
    return new UserError(
      `standby ${name} on ${describeRemote(node)} cannot reach the primary at ${host}:${port} (${network[1]}): PostgreSQL there must listen on ${host} (postgres.listenAddresses), and a firewall between the machines must let ${node.host} through to port ${port}`,
      4,
    );
  }
  return null;
}
