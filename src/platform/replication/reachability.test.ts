import assert from 'node:assert/strict';
import { test } from 'node:test';
import { explainUnreachable } from './reachability.ts';

const where = { name: 'c', node: { user: 'postgres', host: '10.0.2.7', sshPort: 22, identityFile: '', knownHostsFile: '', dataDir: '/d', pgBin: '/b' }, host: '10.0.1.5', port: 5432 };

test("pg_basebackup's failures on the standby's machine are said in terms of the settings to change", () => {
  const refused = explainUnreachable('pg_basebackup: error: connection to server at "10.0.1.5", port 5432 failed: Connection refused\n\tIs the server running on that host and accepting TCP/IP connections?', where);
  assert.ok(refused);
  assert.equal(refused.exitCode, 4);
  assert.match(refused.message, /standby c on postgres@10\.0\.2\.7:22 cannot reach the primary at 10\.0\.1\.5:5432 \(Connection refused\): .*postgres\.listenAddresses.*firewall between the machines must let 10\.0\.2\.7 through to port 5432/);
  const noEntry = explainUnreachable('FATAL:  no pg_hba.conf entry for replication connection from host "192.168.7.9", user "taskflow_replicator", SSL encryption', where);
  assert.match(noEntry?.message ?? '', /does not allow replication from 192\.168\.7\.9, .*add 192\.168\.7\.9 \(or its network\) to postgres\.allowedNetworks\.replication/);
  const certificate = explainUnreachable('pg_basebackup: error: connection to server at "10.0.1.5", port 5432 failed: server certificate for "localhost" (and 2 other names) does not match host name "db1.example.net"', where);
  assert.match(certificate?.message ?? '', /does not name db1\.example\.net/);
  assert.equal(explainUnreachable('pg_basebackup: error: could not create directory "/d": Permission denied', where), null);
});
