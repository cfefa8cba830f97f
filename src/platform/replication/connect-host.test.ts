/**
 * The address other machines reach a node at: the one recorded for it (`connectHost`, from
 * `standby add --remote --primary-host`) when there is one, else today's defaults; and
 * replication.json with a bad one refused on read.
 */
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { test } from 'node:test';
import { LocalCluster } from '../postgres/local-cluster.ts';
import type { PgTools } from '../postgres/tools.ts';
import { dataDirLayout } from '../data-dir.ts';
import { standbyConninfo } from './access.ts';
import type { ReplicationContext } from './context.ts';
import { recordedConnectHost, remoteUpstreamHost } from './reachability.ts';
import { RemoteCluster } from './remote-cluster.ts';
import { readTopology, topologyPath, type NodeRecord, type Topology } from './topology.ts';

const remote = { user: 'postgres', host: '10.0.2.7', sshPort: 22, identityFile: '', knownHostsFile: '', dataDir: '/srv/c', pgBin: '/b' };
const network = { listenAddresses: ['127.0.0.1', '10.0.1.5'], hostNames: [], allowedNetworks: { replication: [], clients: [], allowEverywhere: false } };
const ctx = { dir: { root: '/data' }, config: { postgres: network } } as unknown as ReplicationContext;
const addedAt = '2026-11-24T00:00:00.000Z';
const options = { port: 5432, tools: {} as PgTools, runAs: null, superuserPassword: '' };
const local = new LocalCluster({ ...options, pgData: '/data/postgres/main' });
const far = new RemoteCluster(options, remote);

function topology(main: Partial<NodeRecord>, primary = 'main'): Topology {
  const nodes: Record<string, NodeRecord> = {
    main: { port: 5432, role: primary === 'main' ? 'primary' : 'standby', addedAt, ...main },
    b: { port: 5433, role: primary === 'b' ? 'primary' : 'standby', addedAt },
    c: { port: 5432, role: 'standby', addedAt, remote },
  };
  return { version: 1, primary, mode: 'async', credentialVersion: 1, nodes, pending: null, history: [] };
}

const host = (conninfo: string) => /^host=(\S+) port=(\d+)/.exec(conninfo)?.slice(1, 3).join(':');

test('remote standbys reach a node at its recorded connectHost, else at the default address; local ones on loopback', () => {
  // Without connectHost: today's behaviour (the first listen address that is not loopback).
  assert.equal(host(standbyConninfo(ctx, topology({}), 'c', 'main')), '10.0.1.5:5432');
  assert.equal(remoteUpstreamHost(ctx, local, topology({}).nodes.main), '10.0.1.5');
  assert.equal(remoteUpstreamHost(ctx, far, topology({}).nodes.c), '10.0.2.7');
  // With it: the address given as --primary-host, also after a role change made main the primary again.
  const t = topology({ connectHost: 'db1.example.net' });
  assert.equal(host(standbyConninfo(ctx, t, 'c', 'main')), 'db1.example.net:5432');
  assert.equal(remoteUpstreamHost(ctx, local, t.nodes.main), 'db1.example.net');
  assert.equal(remoteUpstreamHost(ctx, far, { connectHost: '192.0.2.9' }), '192.0.2.9');
  // A local standby still streams over loopback; another node has no recorded address.
  assert.equal(host(standbyConninfo(ctx, t, 'b', 'main')), '127.0.0.1:5432');
  assert.equal(host(standbyConninfo(ctx, t, 'c', 'b')), '10.0.1.5:5433');
  // A local standby of the remote node reaches it at its machine; a remote node's connectHost is for other machines.
  const r = { ...t, nodes: { ...t.nodes, c: { ...t.nodes.c!, connectHost: '192.0.2.9' } } };
  assert.equal(host(standbyConninfo(ctx, r, 'b', 'c')), '10.0.2.7:5432');
});

test('standby add --primary-host is recorded on the primary of the moment', () => {
  const t = topology({}, 'b');
  assert.deepEqual(recordedConnectHost(t, undefined), {});
  assert.deepEqual(recordedConnectHost(t, '10.0.1.6'), { b: { ...t.nodes.b, connectHost: '10.0.1.6' } });
});

test('replication.json: connectHost is optional, and a malformed one is refused on read', () => {
  const root = mkdtempSync(join(tmpdir(), 'taskflow-connect-host-'));
  try {
    const dir = dataDirLayout(root);
    writeFileSync(topologyPath(dir), JSON.stringify(topology({})));
    assert.equal(readTopology(dir, 5432).nodes.main?.connectHost, undefined);
    writeFileSync(topologyPath(dir), JSON.stringify(topology({ connectHost: 'fe80::1' })));
    assert.equal(readTopology(dir, 5432).nodes.main?.connectHost, 'fe80::1');
    for (const bad of ['db1 sslmode=disable', '', "a'b", 42]) {
      writeFileSync(topologyPath(dir), JSON.stringify(topology({ connectHost: bad as string })));
      assert.throws(() => readTopology(dir, 5432), /replication\.json is damaged \(node main: connectHost .* is not an IP address or DNS name\)/);
    }
  } finally {
    rmSync(root, { recursive: true, force: true });
  }
});
