/**
 * `taskflow start` as a user runs it: kill -9 of every process loses no acknowledged write, and
 * SIGTERM stops the server and PostgreSQL cleanly.
 */
import assert from 'node:assert/strict';
import { spawn, type ChildProcess } from 'node:child_process';
import { existsSync, readFileSync, rmSync } from 'node:fs';
import { join } from 'node:path';
import { after, test } from 'node:test';
import { freePort } from '../src/platform/postgres/local-cluster.ts';
import { runCli, TASKFLOW_BIN } from './helpers/cli.ts';
import { request } from './helpers/http.ts';
import { tempDir } from './helpers/platform.ts';

const root = tempDir('crash');
const dataDir = join(root, 'data');
const pgData = join(dataDir, 'postgres', 'main');
const running: ChildProcess[] = [];

after(() => {
  for (const child of running) child.kill('SIGKILL');
  // Leave no cluster behind if a test failed half way.
  const pid = postmasterPid();
  if (pid) killGroup(pid);
  rmSync(root, { recursive: true, force: true });
});

function postmasterPid(): number | null {
  try {
    return Number(readFileSync(join(pgData, 'postmaster.pid'), 'utf8').split('\n')[0]);
  } catch {
    return null;
  }
}

/** SIGKILL to the postmaster's process group: pg_ctl starts it in its own session, with its children. */
function killGroup(pid: number): void {
  try {
    process.kill(-pid, 'SIGKILL');
  } catch {
    /* already gone */
  }
}

interface Started {
  child: ChildProcess;
  stderr: () => string;
  token: string | null;
}

/** Starts `taskflow start --demo` and waits until it says it is running. */
/** Starts the server on an HTTPS port and a plain HTTP (redirect) port. */
async function start(port: number, httpPort: number): Promise<Started> {
  const env: NodeJS.ProcessEnv = {};
  for (const [k, v] of Object.entries(process.env)) if (!k.startsWith('TASKFLOW_')) env[k] = v;
  const child = spawn(process.execPath, [TASKFLOW_BIN, 'start', '--demo', '--https-port', String(port), '--port', String(httpPort), '--data-dir', dataDir, '--log-level', 'warn'], {
    env,
    stdio: ['ignore', 'ignore', 'pipe'],
  });
  running.push(child);
  let stderr = '';
  child.stderr.on('data', (d: Buffer) => {
    stderr += d.toString();
  });
  await new Promise<void>((resolve, reject) => {
    const timer = setTimeout(() => { reject(new Error(`start did not come up: ${stderr}`)); }, 90_000);
    const check = () => {
      if (stderr.includes('Press Ctrl-C')) {
        clearTimeout(timer);
        resolve();
      }
    };
    child.stderr.on('data', check);
    child.on('exit', (code) => {
      clearTimeout(timer);
      reject(new Error(`start exited with ${code}: ${stderr}`));
    });
  });
  const token = /Demo API token \(shown once\): (tf_\S+)/.exec(stderr)?.[1] ?? null;
  return { child, stderr: () => stderr, token };
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

function exited(child: ChildProcess): Promise<number | null> {
  return new Promise((resolve) => {
    if (child.exitCode !== null) resolve(child.exitCode);
    else child.on('exit', (code) => {
      resolve(code);
    });
  });
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
  const pid = postmasterPid();
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
  const survivor = postmasterPid();
  const third = await start(port, httpPort);
  assert.equal(postmasterPid(), survivor, 'the running cluster was adopted, not restarted');
  const again = await request({ port, ca, host, path: `/api/tasks/${acknowledged[0]}`, headers: auth });
  assert.equal(again.status, 200);

  // A second server on the same data directory is refused; it must not adopt (and later stop) this cluster.
  const twice = await runCli(['start', '--data-dir', dataDir, '--port', String(await freePort()), '--https-port', String(await freePort())]);
  assert.equal(twice.code, 1);
  assert.match(twice.stderr, /already running from .* \(pid \d+\)/);
  assert.equal(postmasterPid(), survivor);

  third.child.kill('SIGTERM');
  assert.equal(await exited(third.child), 0, third.stderr());
  assert.equal(existsSync(join(pgData, 'postmaster.pid')), false, 'PostgreSQL was stopped cleanly');
});
