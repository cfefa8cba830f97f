-- Alerts raised by the platform's own operations (backups, restores, replication, drills).
-- Delivery (mail, webhooks, paging) comes with the alerting issue; until then operators read them
-- with `taskflow alerts list` and they stay here as evidence. One open alert per key: raising an
-- alert that is already open counts it again instead of adding a row.
CREATE TABLE alerts (
  id bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
  -- What went wrong, from the catalogue in src/platform/alerts/alerts.ts (`backup.failed`).
  code text NOT NULL,
  severity text NOT NULL CHECK (severity IN ('critical', 'warning', 'info')),
  -- Identifies "the same problem" (`backup.failed:snapshot:main`) so repeats fold into one row.
  key text NOT NULL,
  summary text NOT NULL,
  -- No foreign key: alerts about a deleted tenant are kept.
  tenant_id uuid,
  details jsonb NOT NULL DEFAULT '{}',
  first_at timestamptz NOT NULL,
  last_at timestamptz NOT NULL,
  occurrences integer NOT NULL DEFAULT 1 CHECK (occurrences > 0),
  resolved_at timestamptz,
  resolution text
);
CREATE UNIQUE INDEX alerts_open_key ON alerts (key) WHERE resolved_at IS NULL;
CREATE INDEX alerts_recent ON alerts (last_at DESC);
