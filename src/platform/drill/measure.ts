/**
 * RTO and RPO from what the writers were told and what the new primary has.
 *
 * - RTO: from the kill to the first write the new primary acknowledged (CloudNativePG's tests
 *   measure failover this way: the clock runs until a client can write again, not until a
 *   promotion command returns).
 * - RPO as a count: writes the old primary acknowledged that the new primary does not have.
 * - RPO in seconds: from the last surviving acknowledged write of the old primary to its last
 *   acknowledged write: the stretch of acknowledged history that was lost (0 when nothing was).
 */
import { ackKey, type Ack } from './writers.ts';

const LOST_SAMPLE = 20;

export interface LoadFigures {
  writers: number;
  acknowledged: number;
  /** Acknowledged by the old primary, before it was killed. */
  acknowledgedByOldPrimary: number;
  acknowledgedByNewPrimary: number;
  /** Rows of this drill on the new primary once the load stopped. */
  survivingRows: number;
  lostAcknowledged: number;
  /** Up to 20 of the lost writes. */
  lostSample: { writer: number; seq: number; ackedAt: string }[];
  /** Rows that committed although their writer was never told (the connection died first): not a loss. */
  unacknowledgedSurvivors: number;
  rpoSeconds: number;
  lastAckBeforeKillAt: string | null;
  lastSurvivingAckBeforeKillAt: string | null;
  firstAckOnNewPrimaryAt: string | null;
  rtoSeconds: number | null;
  /** From the old primary's last acknowledgement to the new one's first: what clients saw as the outage. */
  writesStoppedSeconds: number | null;
  /** Writes that failed, by error code or message. */
  failedWrites: Record<string, number>;
}

function seconds(ms: number): number {
  return Math.round(ms) / 1000;
}

function iso(at: number | undefined): string | null {
  return at === undefined ? null : new Date(at).toISOString();
}

export function measureLoad(input: {
  acks: Ack[];
  survivors: Set<string>;
  /** Epoch ms of the SIGKILL. */
  killAt: number;
  /** Epoch ms the load started (the reference when every acknowledged write was lost). */
  loadStartedAt: number;
  newPrimary: string;
  writers: number;
  failures: Map<string, number>;
}): LoadFigures {
  const { acks, survivors, killAt, newPrimary } = input;
  const before = acks.filter((a) => a.node !== newPrimary).sort((a, b) => a.at - b.at);
  const after = acks.filter((a) => a.node === newPrimary).sort((a, b) => a.at - b.at);
  const lost = before.filter((a) => !survivors.has(ackKey(a.writer, a.seq)));
  const acked = new Set(acks.map((a) => ackKey(a.writer, a.seq)));
  const lastBefore = before.at(-1);
  const lastSurviving = before.filter((a) => survivors.has(ackKey(a.writer, a.seq))).at(-1);
  const firstAfter = after[0];
  const rpoMs = lost.length === 0 || !lastBefore ? 0 : lastBefore.at - (lastSurviving?.at ?? input.loadStartedAt);
  return {
    writers: input.writers,
    acknowledged: acks.length,
    acknowledgedByOldPrimary: before.length,
    acknowledgedByNewPrimary: after.length,
    survivingRows: survivors.size,
    lostAcknowledged: lost.length,
    lostSample: lost.slice(0, LOST_SAMPLE).map((a) => ({ writer: a.writer, seq: a.seq, ackedAt: new Date(a.at).toISOString() })),
    unacknowledgedSurvivors: [...survivors].filter((key) => !acked.has(key)).length,
    rpoSeconds: seconds(rpoMs),
    lastAckBeforeKillAt: iso(lastBefore?.at),
    lastSurvivingAckBeforeKillAt: iso(lastSurviving?.at),
    firstAckOnNewPrimaryAt: iso(firstAfter?.at),
    rtoSeconds: firstAfter ? seconds(firstAfter.at - killAt) : null,
    writesStoppedSeconds: firstAfter && lastBefore ? seconds(firstAfter.at - lastBefore.at) : null,
    failedWrites: Object.fromEntries([...input.failures.entries()].sort(([a], [b]) => a.localeCompare(b))),
  };
}
