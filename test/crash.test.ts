/**
 * `taskflow start` as a user runs it: kill -9 of every process loses no acknowledged write, and
 * SIGTERM stops the server and PostgreSQL cleanly.
 */
import assert from 'node:assert/strict';
import type { ChildProcess } from 'node:child_process';
import { existsSync, readFileSync, rmSync } from 'node:fs';
import { join } from 'node:path';
import { after, test } from 'node:test';
import { freePort } from '../src/platform/postgres/local-cluster.ts';
import { runCli } from './helpers/cli.ts';
import { request } from './helpers/http.ts';
import { tempDir } from './helpers/platform.ts';
import { exited, killGroup, killServers, postmasterPid, startTaskflow, type StartedTaskflow } from './helpers/taskflow-process.ts';

const root = tempDir('crash');
const dataDir = join(root, 'data');
const pgData = join(dataDir, 'postgres', 'main');
const running: ChildProcess[] = [];

after(() => {
  killServers(running, pgData);
  rmSync(root, { recursive: true, force: true });
});

/** Starts `taskflow start --demo` on an HTTPS port and a plain HTTP (redirect) port. */
function start(port: number, httpPort: number): Promise<StartedTaskflow> {
  return startTaskflow({
    args: ['--demo', '--https-port', String(port), '--port', String(httpPort), '--data-dir', dataDir, '--log-level', 'warn'],
    onSpawn: (child) => running.push(child),
  });
}

function alive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch {
    return false;
  }
}

async function waitUntilGone(pid: number): Promise<void> {
  for (let i = 0; i < 100 && alive(pid); i++) await new Promise((r) => setTimeout(r, 50));
  assert.equal(alive(pid), false, 'the postmaster was killed');
}

test('kill -9 of TaskFlow and PostgreSQL loses no acknowledged write; SIGTERM stops cleanly', { timeout: 240_000 }, async () => {
  const port = await freePort();
  const httpPort = await freePort();
  const first = await start(port, httpPort);
  assert.ok(first.token, 'the first start prints the demo API token');
  const auth = { authorization: `Bearer ${first.token}` };
  const host = `demo.localhost:${port}`;
  // The server's own certificate authority, made on the first start: requests check the chain and the name.
  const ca = readFileSync(join(dataDir, 'tls', 'ca.crt'), 'utf8');
  const redirected = await request({ port: httpPort, host: `demo.localhost:${httpPort}`, path: '/api/projects?x=1' });
  assert.equal(redirected.status, 308, 'plain HTTP only redirects');
  assert.equal(redirected.headers.location, `https://demo.localhost:${port}/api/projects?x=1`);

  const projects = await request({ port, ca, host, path: '/api/projects', headers: auth });
  assert.equal(projects.status, 200, projects.text);
  const projectId = (projects.json() as { items: { id: string }[] }).items[0]?.id;
  assert.ok(projectId, 'the demo tenant has a project');

  const acknowledged: string[] = [];
  for (let i = 0; i < 40; i++) {
    const res = await request({ port, ca, host, method: 'POST', path: `/api/projects/${projectId}/tasks`, headers: auth, body: { title: `written before the crash ${i}` } });
    assert.equal(res.status, 201, res.text);
    acknowledged.push((res.json() as { id: string }).id);
  }

  // Everything dies at once, with no chance to clean up.
  const pid = postmasterPid(pgData);
  assert.ok(pid, 'PostgreSQL is running');
  first.child.kill('SIGKILL');
  killGroup(pid);
  await exited(first.child);
  await waitUntilGone(pid);
  assert.ok(existsSync(join(pgData, 'postmaster.pid')), 'the crash left a stale postmaster.pid behind');

  const second = await start(port, httpPort);
  assert.equal(second.token, null, 'the demo tenant is not created twice');
  for (const id of acknowledged) {
    const res = await request({ port, ca, host, path: `/api/tasks/${id}`, headers: auth });
    assert.equal(res.status, 200, `acknowledged task ${id} survived the crash`);
  }

  // Only TaskFlow dies this time: the next start adopts the PostgreSQL that is still running.
  second.child.kill('SIGKILL');
  await exited(second.child);
  const survivor = postmasterPid(pgData);
  const third = await start(port, httpPort);
  assert.equal(postmasterPid(pgData), survivor, 'the running cluster was adopted, not restarted');
  const again = await request({ port, ca, host, path: `/api/tasks/${acknowledged[0]}`, headers: auth });
  assert.equal(again.status, 200);

  // A second server on the same data directory is refused; it must not adopt (and later stop) this cluster.
  const twice = await runCli(['start', '--data-dir', dataDir, '--port', String(await freePort()), '--https-port', String(await freePort())]);
  assert.equal(twice.code, 1);
  assert.match(twice.stderr, /already running from .* \(pid \d+\)/);
  assert.equal(postmasterPid(pgData), survivor);

  third.child.kill('SIGTERM');
  assert.equal(await exited(third.child), 0, third.stderr());
  assert.equal(existsSync(join(pgData, 'postmaster.pid')), false, 'PostgreSQL was stopped cleanly');
});
