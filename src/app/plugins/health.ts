/**
 * Liveness and readiness, answered on any host: /healthz says the process is alive, /readyz that it
 * can reach the control database (and so resolve tenants).
 */
import type pg from 'pg';
import { Type } from 'typebox';
import { AppError } from '../../errors.ts';
import type { App } from '../app.ts';
import { PROBLEM_RESPONSES } from '../schema.ts';

const READY_TIMEOUT_MS = 2_000;

const Status = Type.Object({ status: Type.Literal('ok') }, { additionalProperties: false });

/** Runs a trivial query, failing if it does not answer within READY_TIMEOUT_MS. */
async function controlAnswers(control: Pick<pg.Pool, 'query'>): Promise<boolean> {
  let timer: NodeJS.Timeout | undefined;
  const timeout = new Promise<boolean>((resolve) => {
    timer = setTimeout(() => {
      resolve(false);
    }, READY_TIMEOUT_MS);
  });
  const query = control.query('SELECT 1').then(
    () => true,
    () => false,
  );
  try {
    return await Promise.race([query, timeout]);
  } finally {
    clearTimeout(timer);
  }
}

export function installHealth(app: App, options: { control: Pick<pg.Pool, 'query'> }): void {
  const config = { tenancy: 'none' } as const;
  app.get('/healthz', { config, schema: { summary: 'Whether the process answers', response: { 200: Status, ...PROBLEM_RESPONSES } } }, () => ({ status: 'ok' as const }));
  app.get('/readyz', { config, schema: { summary: 'Whether the control database answers', response: { 200: Status, ...PROBLEM_RESPONSES } } }, async () => {
    if (!(await controlAnswers(options.control))) throw new AppError('database-unavailable', 'the control database does not answer');
    return { status: 'ok' as const };
  });
}
