-- The audit trail of authentication and account events, written through one typed interface
-- (src/platform/audit/). It lives outside tenant databases so that restoring a tenant cannot
-- rewrite its history; the tamper-evident chain over it comes with the audit issue.
CREATE TABLE audit_events (
  id bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
  at timestamptz NOT NULL,
  -- No foreign key: the history of a deleted tenant is kept.
  tenant_id uuid,
  action text NOT NULL,
  outcome text NOT NULL CHECK (outcome IN ('success', 'failure')),
  actor_type text NOT NULL CHECK (actor_type IN ('user', 'operator', 'anonymous', 'system')),
  actor_id text,
  actor_label text,
  subject_type text,
  subject_id text,
  ip inet,
  user_agent text,
  details jsonb NOT NULL DEFAULT '{}'
);
CREATE INDEX audit_events_tenant ON audit_events (tenant_id, at);
CREATE INDEX audit_events_action ON audit_events (action, at);

-- Counters of the rate limiter shared by every app host (rate-limiter-flexible's Postgres layout):
-- login failures per account and per address, reset requests.
CREATE TABLE throttles (
  key varchar(255) PRIMARY KEY,
  points integer NOT NULL DEFAULT 0,
  expire bigint
);
CREATE INDEX throttles_expire ON throttles (expire);
