/**
 * How long creating a tenant takes: one create on a fresh managed cluster, then a hundred more one
 * after another, each timed through `createTenant` as the CLI and API call it. Issue 2 asks for
 * "create takes under a second on this machine"; the figures say whether each create was, but a
 * benchmark never fails on a timing.
 */
import { performance } from 'node:perf_hooks';
import { createTenant } from '../src/platform/tenants/provision.ts';
import { startTestPlatform, type TestPlatform } from '../test/helpers/platform.ts';

/** Creates timed after the first one. */
const SERIES_LENGTH = 100;
/** Issue 2's bound for one create. */
const CREATE_LIMIT_MS = 1_000;

export interface TimingSummary {
  count: number;
  totalMs: number;
  meanMs: number;
  p50Ms: number;
  p95Ms: number;
  maxMs: number;
}

export interface TenantsResult {
  description: string;
  postgresVersion: string;
  /** Starting the fresh cluster and control plane, before any tenant; for context only. */
  clusterStartMs: number;
  limitMs: number;
  first: { ms: number; underLimit: boolean };
  series: TimingSummary & {
    /** Mean of the first and the last ten creates: whether creates slow down as tenants pile up. */
    firstTenMeanMs: number;
    lastTenMeanMs: number;
    allUnderLimit: boolean;
    /** The creates (1-based, within the series) that took the limit or longer. */
    overLimit: { create: number; ms: number }[];
    /** Every create of the series in order, in ms. */
    samplesMs: number[];
  };
}

/** Milliseconds rounded to a tenth, enough for timings of tens of ms and more. */
function ms(value: number): number {
  return Math.round(value * 10) / 10;
}

function mean(values: number[]): number {
  return values.length === 0 ? 0 : values.reduce((sum, v) => sum + v, 0) / values.length;
}

/** The nearest-rank percentile of sorted values (p in 0..100). */
function percentile(sorted: number[], p: number): number {
  if (sorted.length === 0) return 0;
  const rank = Math.max(1, Math.ceil((p / 100) * sorted.length));
  return sorted[Math.min(rank, sorted.length) - 1]!;
}

/** Count, total, mean, p50, p95 and max of a set of durations in ms. */
export function summariseTimings(samples: number[]): TimingSummary {
  const sorted = [...samples].sort((a, b) => a - b);
  return {
    count: samples.length,
    totalMs: ms(samples.reduce((sum, v) => sum + v, 0)),
    meanMs: ms(mean(samples)),
    p50Ms: ms(percentile(sorted, 50)),
    p95Ms: ms(percentile(sorted, 95)),
    maxMs: ms(sorted[sorted.length - 1] ?? 0),
  };
}

async function timedCreate(tp: TestPlatform, slug: string): Promise<number> {
  const started = performance.now();
  await createTenant({ platform: tp.platform, slug, actor: 'bench' });
  return performance.now() - started;
}

/** Runs the tenant-create benchmark on its own fresh cluster, which it removes afterwards. */
export async function runTenantsBenchmark(progress: (message: string) => void): Promise<TenantsResult> {
  progress('tenants: starting a fresh managed cluster');
  const startedAt = performance.now();
  const tp = await startTestPlatform();
  const clusterStartMs = performance.now() - startedAt;
  try {
    const version = await tp.platform.control.query<{ server_version: string }>('SHOW server_version');

    const firstMs = await timedCreate(tp, 'bench-first');
    progress(`tenants: first create took ${ms(firstMs)} ms`);

    const samples: number[] = [];
    for (let i = 1; i <= SERIES_LENGTH; i++) {
      samples.push(await timedCreate(tp, `bench-${String(i).padStart(3, '0')}`));
      if (i % 20 === 0) progress(`tenants: ${i}/${SERIES_LENGTH} created, last took ${ms(samples[i - 1]!)} ms`);
    }

    const overLimit = samples.flatMap((v, i) => (v >= CREATE_LIMIT_MS ? [{ create: i + 1, ms: ms(v) }] : []));
    return {
      description: `createTenant timed on a fresh managed cluster: the first tenant, then ${SERIES_LENGTH} more one after another`,
      postgresVersion: version.rows[0]?.server_version ?? 'unknown',
      clusterStartMs: ms(clusterStartMs),
      limitMs: CREATE_LIMIT_MS,
      first: { ms: ms(firstMs), underLimit: firstMs < CREATE_LIMIT_MS },
      series: {
        ...summariseTimings(samples),
        firstTenMeanMs: ms(mean(samples.slice(0, 10))),
        lastTenMeanMs: ms(mean(samples.slice(-10))),
        allUnderLimit: overLimit.length === 0,
        overLimit,
        samplesMs: samples.map(ms),
      },
    };
  } finally {
    progress('tenants: stopping the cluster');
    await tp.cleanup();
  }
}
