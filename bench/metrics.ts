/**
 * What a scrape of the metrics listener (src/app/metrics-server.ts) costs, on a primary with one
 * streaming standby: a scrape that probes the cluster (metrics.probeCacheMs 0), one served from the
 * shared probe's result, and a burst of 20 at once, beside the baseline every scrape cost before the
 * listener: `taskflow cluster status --metrics` run as a process (the textfile-collector route).
 * ratio = probing scrape ÷ that command.
 */
import { loadavg } from 'node:os';
import { performance } from 'node:perf_hooks';
import { startMetricsServer, type MetricsServer } from '../src/app/metrics-server.ts';
import { createLogger } from '../src/platform/log.ts';
import { openReplication } from '../src/platform/replication/context.ts';
import { addStandby } from '../src/platform/replication/standby.ts';
import { runCli } from '../test/helpers/cli.ts';
import { startTestPlatform, type TestPlatform } from '../test/helpers/platform.ts';

const CLI_RUNS = 5;
const SCRAPES = 20;
const CACHED_SCRAPES = 50;
const BURST = 20;

const median = (values: number[]): number => [...values].sort((a, b) => a - b)[Math.floor(values.length / 2)] ?? 0;
const round = (ms: number): number => Math.round(ms * 10) / 10;
const summary = (samples: number[]) => ({ median: round(median(samples)), worst: round(Math.max(...samples)), runs: samples.length });

async function timed(fn: () => Promise<unknown>): Promise<number> {
  const started = performance.now();
  await fn();
  return performance.now() - started;
}

async function scrape(server: MetricsServer): Promise<string> {
  const res = await fetch(`${server.url}/metrics`);
  if (res.status !== 200) throw new Error(`scrape answered ${res.status}`);
  return res.text();
}

function probesIn(text: string): number {
  return Number(/^taskflow_metrics_probes_total (\d+)$/m.exec(text)?.[1] ?? NaN);
}

function withCache(tp: TestPlatform, probeCacheMs: number): Promise<MetricsServer> {
  const platform = { ...tp.platform, config: { ...tp.config, metrics: { ...tp.config.metrics, probeCacheMs } } };
  return startMetricsServer({ platform, token: null });
}

export async function runMetricsBenchmark(progress: (message: string) => void): Promise<unknown> {
  const tp = await startTestPlatform({ overrides: { 'metrics.enabled': true, 'metrics.port': 0 } });
  const servers: MetricsServer[] = [];
  try {
    await addStandby(openReplication(tp.config, createLogger({ level: 'silent' })), { name: 'b' });
    progress('metrics: primary and standby b streaming');
    const cli: number[] = [];
    for (let i = 0; i < CLI_RUNS; i++) {
      cli.push(
        await timed(async () => {
          const r = await runCli(['cluster', 'status', '--metrics', '--data-dir', tp.dataDir]);
          if (r.code !== 0) throw new Error(`cluster status --metrics failed: ${r.stderr}`);
        }),
      );
    }
    const probing = await withCache(tp, 0);
    const cached = await withCache(tp, 600_000);
    servers.push(probing, cached);
    const probingMs: number[] = [];
    for (let i = 0; i < SCRAPES; i++) probingMs.push(await timed(() => scrape(probing)));
    await scrape(cached);
    const cachedMs: number[] = [];
    for (let i = 0; i < CACHED_SCRAPES; i++) cachedMs.push(await timed(() => scrape(cached)));
    const before = probesIn(await scrape(probing));
    let texts: string[] = [];
    const burstMs = await timed(async () => {
      texts = await Promise.all(Array.from({ length: BURST }, () => scrape(probing)));
    });
    const probesForBurst = Math.max(...texts.map(probesIn)) - before;
    progress(`metrics: probing scrape ${round(median(probingMs))} ms, cached ${round(median(cachedMs))} ms, CLI ${round(median(cli))} ms`);
    return {
      unit: 'ms, wall time of one scrape over HTTP on loopback (or of the command)',
      baselineCliStatusMetricsMs: summary(cli),
      probingScrapeMs: summary(probingMs),
      cachedScrapeMs: summary(cachedMs),
      burst: { scrapes: BURST, wallMs: round(burstMs), probesRun: probesForBurst, probeCacheMs: 0 },
      ratioProbingScrapeToCli: Math.round((median(probingMs) / median(cli)) * 100) / 100,
      exposedBytes: texts[0]?.length ?? 0,
      loadAverage1m: loadavg()[0],
      note: 'baseline: `taskflow cluster status --metrics` as a process, what the textfile-collector route costs per run; probing: metrics.probeCacheMs 0, so every sequential scrape probes both nodes and the alerts; cached: the shared probe result reused',
    };
  } finally {
    for (const server of servers) await server.close();
    await tp.cleanup();
  }
}
