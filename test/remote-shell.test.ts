/**
 * Commands on a remote node over the system OpenSSH client, against a real sshd on a loopback port:
 * calls that share a connection (the WAL spool's listing and pulls) log in once for as long as the
 * process keeps using it; calls that do not share (failover, maintenance) log in every time; a node
 * reached with other credentials never rides on a connection made with these; and a server that
 * allows one session per connection still runs every call.
 */
import assert from 'node:assert/strict';
import { existsSync, readFileSync, rmSync, statSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import { closeSharedConnections, runRemote, runRemoteToFile, sharedConnectionSockets, type RemoteNode } from '../src/platform/replication/remote-shell.ts';
import { sshdUnavailable } from './backup-fixtures.ts';
import { tempDir } from './helpers/platform.ts';
import { startPostgresSshd, type PostgresSshd } from './helpers/replication.ts';

const skip = process.getuid?.() !== 0 ? 'needs root (sshd logs in as the postgres OS user)' : sshdUnavailable();

function nodeOf(sshd: PostgresSshd, knownHostsFile = sshd.knownHostsFile): RemoteNode {
  return { user: sshd.user, host: '127.0.0.1', sshPort: sshd.port, identityFile: sshd.identityFile, knownHostsFile, dataDir: join(sshd.workDir, 'pgdata'), pgBin: '/usr/lib/postgresql/15/bin' };
}

describe('remote shell connections', { timeout: 120_000, skip: skip ?? false }, () => {
  let sshd: PostgresSshd;
  let scratch: string;

  before(async () => {
    sshd = await startPostgresSshd();
    scratch = tempDir('remote-shell');
  });
  after(async () => {
    closeSharedConnections();
    await sshd.cleanup();
    rmSync(scratch, { recursive: true, force: true });
  });

  test('shared calls log in once; exit status, output and binary files come through; unshared calls log in each time', async () => {
    const node = nodeOf(sshd);
    const before = sshd.acceptedLogins();
    for (let i = 0; i < 4; i++) {
      const r = await runRemote(node, `echo "call ${i} as $(id -un)"; exit ${i}`, { shared: true });
      assert.equal(r.status, i);
      assert.equal(r.stdout, `call ${i} as postgres\n`);
    }
    const file = join(scratch, 'bytes');
    const copied = await runRemoteToFile(node, 'head -c 300000 /dev/zero | tr "\\000" "\\377"', file, { shared: true });
    assert.equal(copied.status, 0);
    assert.deepEqual(readFileSync(file), Buffer.alloc(300_000, 0xff));
    assert.equal(sshd.acceptedLogins() - before, 1, 'five shared calls, one login');
    const sockets = sharedConnectionSockets();
    assert.equal(sockets.length, 1, 'one control socket');
    assert.ok(statSync(sockets[0] ?? '').isSocket());
    assert.equal(statSync(dirname(sockets[0] ?? '')).mode & 0o777, 0o700, 'in a directory only this user can reach');

    for (let i = 0; i < 2; i++) assert.equal((await runRemote(node, 'true')).status, 0);
    assert.equal(sshd.acceptedLogins() - before, 3, 'calls that do not share log in each time');
  });

  test('other credentials for the same host never ride on the shared connection', async () => {
    await runRemote(nodeOf(sshd), 'true', { shared: true });
    const stranger = nodeOf(sshd, sshd.emptyKnownHostsFile);
    await assert.rejects(runRemote(stranger, 'true', { shared: true }), (err: Error & { exitCode?: number }) => {
      assert.match(err.message, /host key is not in the configured known_hosts/);
      return true;
    });
  });

  test('closing the shared connections: the next shared call logs in again, and no socket is left', async () => {
    const node = nodeOf(sshd);
    await runRemote(node, 'true', { shared: true });
    const [socket] = sharedConnectionSockets();
    assert.ok(socket);
    closeSharedConnections();
    assert.equal(existsSync(dirname(socket)), false, 'the control directory is gone');
    assert.deepEqual(sharedConnectionSockets(), []);
    const before = sshd.acceptedLogins();
    assert.equal((await runRemote(node, 'echo again', { shared: true })).stdout, 'again\n');
    assert.equal(sshd.acceptedLogins() - before, 1);
  });

  test('a server allowing one session per connection: concurrent shared calls all run, the extra one on its own connection', async () => {
    const strict = await startPostgresSshd({ maxSessions: 1 });
    try {
      const node = nodeOf(strict);
      await runRemote(node, 'true', { shared: true });
      assert.equal(strict.acceptedLogins(), 1);
      // The shared connection carries one of them; sshd refuses it a second session at once.
      const results = await Promise.all([0, 1, 2].map((i) => runRemote(node, `sleep 1; echo ${i}`, { shared: true })));
      assert.deepEqual(results.map((r) => [r.status, r.stdout]), [[0, '0\n'], [0, '1\n'], [0, '2\n']]);
      assert.equal(strict.acceptedLogins(), 3, 'the two refused sessions ran on connections of their own');
    } finally {
      closeSharedConnections();
      await strict.cleanup();
    }
  });
});
