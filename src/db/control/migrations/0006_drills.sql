-- Drills (P24): dated evidence that failover and site loss work, and what they cost. One row per
-- drill, written when it starts (outcome 'running') and completed when it ends; a drill whose
-- process died is marked 'failed' by the next one. Rows are never deleted: they are the record.
CREATE TABLE drills (
  id uuid PRIMARY KEY,
  kind text NOT NULL CHECK (kind IN ('failover', 'site-loss')),
  started_at timestamptz NOT NULL,
  finished_at timestamptz,
  outcome text NOT NULL CHECK (outcome IN ('running', 'passed', 'failed')),
  -- The PostgreSQL system identifier of the replicated cluster (the same on every node).
  cluster text NOT NULL,
  -- What was asked: mode, writers, duration, engine, the production flag, nodes and sites.
  parameters jsonb NOT NULL DEFAULT '{}',
  -- What was measured: RTO, RPO (count and seconds), per-tenant recovery, the timeline, the failure.
  figures jsonb NOT NULL DEFAULT '{}',
  report_markdown text NOT NULL DEFAULT '',
  operator text NOT NULL,
  CHECK ((outcome = 'running') = (finished_at IS NULL))
);
CREATE INDEX drills_recent ON drills (started_at DESC);
