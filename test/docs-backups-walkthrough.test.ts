/**
 * docs/backups.md's walkthrough ("back up, lose a tenant's data, get it back to the second"), run
 * as a newcomer runs it: its shell lines verbatim, in bash, in a fresh project directory where
 * `taskflow start --demo` (what scripts/start.sh runs) made the demo tenant. What a reader fills in
 * is filled in the same way: the public key `age-keygen` printed for `age1…`, the time step 4
 * printed for the time in step 6, and a scratch directory for /srv/taskflow-backup. `npx taskflow`
 * runs this checkout's CLI (a shim first on PATH); "Restart TaskFlow" is done where step 3 says.
 * If the page changes so that this no longer holds, this test says which step.
 */
import assert from 'node:assert/strict';
import type { ChildProcess } from 'node:child_process';
import { chmodSync, mkdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { after, test } from 'node:test';
import { fileURLToPath } from 'node:url';
import { freePort } from '../src/platform/postgres/local-cluster.ts';
import { runProcess, TASKFLOW_BIN, type CliResult } from './helpers/cli.ts';
import { tempDir } from './helpers/platform.ts';
import { cleanEnv, exited, killServers, startTaskflow, type StartedTaskflow } from './helpers/taskflow-process.ts';

const DOC = fileURLToPath(new URL('../docs/backups.md', import.meta.url));
const HEADING = "### Walkthrough: back up, lose a tenant's data, get it back to the second";

interface Step {
  number: number;
  /** The step's comment lines, without `# `. */
  comment: string;
  /** Its shell lines (here-documents included), as written. */
  script: string;
}

/** The walkthrough's sh block split at its `# N.` comments, and the output block shown after it. */
function readWalkthrough(): { steps: Step[]; sampleOutput: string } {
  const text = readFileSync(DOC, 'utf8');
  const at = text.indexOf(HEADING);
  assert.ok(at >= 0, `docs/backups.md has no section "${HEADING}"`);
  const section = text.slice(at, text.indexOf('\n### ', at + HEADING.length));
  const blocks = [...section.matchAll(/```(\w*)\n([\s\S]*?)```/g)];
  const sh = blocks.find((b) => b[1] === 'sh')?.[2];
  const sampleOutput = blocks.find((b) => b[1] === '')?.[2];
  assert.ok(sh && sampleOutput, 'the walkthrough has a sh block and the restore output after it');
  const steps: Step[] = [];
  for (const line of sh.split('\n')) {
    const numbered = /^# (\d+)\. (.*)$/.exec(line);
    const current = steps.at(-1);
    if (numbered) steps.push({ number: Number(numbered[1]), comment: numbered[2] ?? '', script: '' });
    else if (current && /^#\s+\S/.test(line) && current.script === '') current.comment += ` ${line.replace(/^#\s+/, '')}`;
    else if (current) current.script += `${line}\n`;
  }
  assert.deepEqual(
    steps.map((s) => s.number),
    [1, 2, 3, 4, 5, 6],
    'six numbered steps',
  );
  return { steps, sampleOutput };
}

const root = tempDir('docs-walkthrough');
const project = join(root, 'project');
const home = join(root, 'home');
const repository = join(root, 'backup-repository');
const shims = join(root, 'bin');
const pgData = join(project, '.taskflow', 'postgres', 'main');
const running: ChildProcess[] = [];

after(() => {
  killServers(running, pgData);
  rmSync(root, { recursive: true, force: true });
});

/** Runs a step's lines in bash (stopping at the first failure), as the reader's shell would. */
function bash(script: string, env: NodeJS.ProcessEnv): Promise<CliResult> {
  return runProcess('bash', ['-e', '-o', 'pipefail', '-c', script], { cwd: project, env, timeout: 300_000 });
}

test("docs/backups.md's walkthrough: back up, delete every task of the demo tenant, restore it to the second", { timeout: 600_000 }, async () => {
  const { steps, sampleOutput } = readWalkthrough();
  for (const dir of [project, home, shims]) mkdirSync(dir, { recursive: true });
  chmodSync(home, 0o700);
  // `npx taskflow` in the project directory of a checkout runs its bin; here, this checkout's.
  writeFileSync(join(shims, 'npx'), `#!/bin/sh\n[ "$1" = taskflow ] || { echo "npx shim: only taskflow" >&2; exit 127; }\nshift\nexec ${JSON.stringify(process.execPath)} ${JSON.stringify(TASKFLOW_BIN)} "$@"\n`, { mode: 0o755 });
  const env = cleanEnv({ HOME: home, PATH: `${shims}:${process.env.PATH ?? ''}` });
  const port = await freePort();
  const httpPort = await freePort();
  // What scripts/start.sh runs once it has installed what is needed.
  const start = (): Promise<StartedTaskflow> =>
    startTaskflow({ args: ['--demo', '--https-port', String(port), '--port', String(httpPort), '--log-level', 'warn'], cwd: project, env, timeoutMs: 180_000, onSpawn: (child) => running.push(child) });
  let server = await start();
  assert.ok(server.token, 'the first start made the demo tenant');

  const filled: Record<string, string> = { '/srv/taskflow-backup': repository };
  const run = async (step: Step): Promise<CliResult> => {
    let script = step.script;
    for (const [placeholder, value] of Object.entries(filled)) script = script.replaceAll(placeholder, value);
    const ran = await bash(script, env);
    assert.equal(ran.code, 0, `step ${step.number} (${step.comment}) failed:\n${script}\n${ran.stderr}`);
    return ran;
  };
  const taskCount = async (): Promise<number> => {
    const ran = await bash("npx taskflow db psql --tenant demo -- -At -c 'SELECT count(*) FROM tasks'", env);
    assert.equal(ran.code, 0, ran.stderr);
    return Number(ran.stdout.trim());
  };
  const [keys, repo, restart, mark, accident, restore] = steps as [Step, Step, Step, Step, Step, Step];

  // 1. The key pair: age-keygen prints the public key the reader copies into the configuration.
  const keygen = await run(keys);
  const recipient = /Public key: (age1[0-9a-z]+)/.exec(keygen.stderr + keygen.stdout)?.[1];
  assert.ok(recipient, `age-keygen printed a public key: ${keygen.stderr}`);
  filled['"age1…"'] = JSON.stringify(recipient);
  assert.equal(readFileSync(join(home, 'backup-identity.txt'), 'utf8').includes('AGE-SECRET-KEY-1'), true);

  // 2. The repository in .taskflow/config.json.
  await run(repo);
  assert.deepEqual((JSON.parse(readFileSync(join(project, '.taskflow', 'config.json'), 'utf8')) as { backup: { recipients: string[] } }).backup.recipients, [recipient]);

  // 3. Ctrl-C, start again, then a snapshot on demand and the archive's state.
  assert.match(restart.comment, /Restart TaskFlow/);
  server.child.kill('SIGINT');
  assert.equal(await exited(server.child), 0, server.stderr());
  server = await start();
  const backedUp = await run(restart);
  assert.match(backedUp.stdout, /snapshot/i);
  const before = await taskCount();
  assert.ok(before >= 12, `the demo tenant has its tasks (${before})`);

  // 4. The time at which everything is right, as the reader notes it.
  const noted = (await run(mark)).stdout.trim();
  assert.match(noted, /^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ$/);
  const written = /--at (\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ)/.exec(restore.script)?.[1];
  assert.ok(written, 'step 6 restores to a time');
  filled[written] = noted;
  // The accident comes later than the noted second, as it does for a reader.
  await new Promise((resolve) => setTimeout(resolve, Math.max(0, Date.parse(noted) + 1000 - Date.now())));

  // 5. Every task gone.
  await run(accident);
  assert.equal(await taskCount(), 0);

  // 6. Suspend, restore to the noted second, resume.
  const restored = await run(restore);
  assert.equal(await taskCount(), before, 'every task is back');
  // What the restore printed has the lines the page shows, in its order.
  const fields = (s: string) => s.split('\n').flatMap((line) => /^([a-z][a-z ]+):\s/.exec(line)?.[1] ?? []);
  assert.deepEqual(fields(restored.stdout), fields(sampleOutput), restored.stdout);
  assert.equal(/^restored to:\s+(\S+)$/m.exec(restored.stdout)?.[1], noted.replace('Z', '.000Z'));
  const aside = /^replaced database kept as:\s+(\S+)$/m.exec(restored.stdout)?.[1];
  assert.ok(aside);

  // The replaced database, listed and dropped as the page says.
  const listed = await bash('npx taskflow restore aside', env);
  assert.equal(listed.code, 0, listed.stderr);
  assert.ok(listed.stdout.includes(aside), listed.stdout);
  const dropped = await bash(`npx taskflow restore aside --drop ${aside}`, env);
  assert.equal(dropped.code, 0, dropped.stderr);

  server.child.kill('SIGINT');
  assert.equal(await exited(server.child), 0, server.stderr());
});
