/**
 * `taskflow scan`: the dynamic security checks, run against any TaskFlow deployment with a prepared
 * test tenant and its credentials. CI runs the same checks against a server it starts
 * (test/security/). Each check reports its failed probes; a report is JSON and a table.
 */
import { ALL_CHECKS } from './checks/index.ts';
import { ScanClient, type ClientOptions } from './client.ts';
import { createContext } from './context.ts';
import type { Check, CheckOutcome, ScanReport, ScanTarget } from './types.ts';

/** Runs the checks in order; a check that throws is a failure with the error as its finding. */
export async function runScan(props: { target: ScanTarget; client?: ClientOptions; checks?: Check[]; onCheck?: (outcome: CheckOutcome) => void }): Promise<ScanReport> {
  const client = new ScanClient(props.client);
  const ctx = createContext(client, props.target);
  const startedAt = new Date().toISOString();
  const checks: CheckOutcome[] = [];
  for (const check of props.checks ?? ALL_CHECKS) {
    const started = performance.now();
    let outcome: CheckOutcome;
    try {
      const result = await check.run(ctx);
      const base = { id: check.id, title: check.title, severity: check.severity, ms: Math.round(performance.now() - started) };
      outcome = 'skip' in result
        ? { ...base, status: 'skip', findings: [result.skip], probes: 0 }
        : { ...base, status: result.failures.length === 0 ? 'pass' : 'fail', findings: result.failures, probes: result.probes };
    } catch (err) {
      outcome = { id: check.id, title: check.title, severity: check.severity, status: 'fail', findings: [`the check could not run: ${(err as Error).message}`], probes: 0, ms: Math.round(performance.now() - started) };
    }
    checks.push(outcome);
    props.onCheck?.(outcome);
  }
  return {
    target: props.target.tenant.url,
    startedAt,
    finishedAt: new Date().toISOString(),
    passed: checks.filter((c) => c.status === 'pass').length,
    failed: checks.filter((c) => c.status === 'fail').length,
    skipped: checks.filter((c) => c.status === 'skip').length,
    checks,
  };
}
