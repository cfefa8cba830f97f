/**
 * Two primaries: a fenced node that came back without its fence (a site that was unreachable during
 * the failover), or a node promoted behind TaskFlow's back. Each would take writes the other never
 * sees, so TaskFlow refuses to work until only the recorded primary accepts writes.
 */
import { UserError } from '../../errors.ts';
import type { LocalCluster } from '../postgres/local-cluster.ts';
import { probeNode, type NodeProbe } from './probe.ts';
import type { Topology } from './topology.ts';

/** Nodes that accept writes (reachable and not in recovery), with their timelines. */
export function writableNodes(probes: Map<string, NodeProbe>): { name: string; timeline: number | null }[] {
  return [...probes.entries()]
    .filter(([, p]) => p.reachable && p.inRecovery === false)
    .map(([name, p]) => ({ name, timeline: p.timeline }))
    .sort((a, b) => a.name.localeCompare(b.name));
}

/** The refusal for a topology whose writable nodes are not exactly the recorded primary, or null when all is well. */
export function splitBrainProblem(topology: Topology, probes: Map<string, NodeProbe>, expectedPrimary = topology.primary): string | null {
  const writable = writableNodes(probes);
  const intruders = writable.filter((w) => w.name !== expectedPrimary);
  if (intruders.length === 0) return null;
  const list = writable.map((w) => `${w.name} (timeline ${w.timeline ?? '?'})`).join(' and ');
  const fix = intruders
    .map((w) => {
      const fence = topology.nodes[w.name]?.fence;
      const why = fence ? `${w.name} was fenced at ${fence.at} (${fence.reason})` : `${w.name} is recorded as a ${topology.nodes[w.name]?.role ?? 'node'}`;
      return `${why}: stop it ('taskflow cluster stop ${w.name}') and make it a standby of ${expectedPrimary} ('taskflow cluster rebuild ${w.name}')`;
    })
    .join('; ');
  const several = writable.length > 1 ? `${list} both accept writes` : `${list} accepts writes`;
  return `refusing to continue: ${several}, but the recorded primary is ${expectedPrimary}. ${fix}`;
}

/**
 * Probes every node and refuses (exit 4) when any node but the expected primary accepts writes.
 * Returns the probes for the caller to use.
 */
export async function assertSinglePrimaryOf(
  topology: Topology,
  clusters: Map<string, LocalCluster>,
  options: { expectedPrimary?: string; skip?: string[] } = {},
): Promise<Map<string, NodeProbe>> {
  const probes = new Map<string, NodeProbe>();
  await Promise.all(
    [...clusters.entries()]
      .filter(([name]) => !(options.skip ?? []).includes(name))
      .map(async ([name, cluster]) => {
        probes.set(name, await probeNode(cluster));
      }),
  );
  const problem = splitBrainProblem(topology, probes, options.expectedPrimary);
  if (problem) throw new UserError(problem, 4);
  return probes;
}
