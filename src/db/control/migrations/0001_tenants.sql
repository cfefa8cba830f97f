-- Tenants, their placement and their credentials' versions. Passwords are never stored: a tenant's
-- login password is derived from the server's master key, the tenant id and credential_version.
CREATE TABLE tenants (
  id uuid PRIMARY KEY DEFAULT gen_random_uuid(),
  slug text NOT NULL UNIQUE CHECK (slug ~ '^[a-z0-9]([a-z0-9-]{0,38}[a-z0-9])?$'),
  name text NOT NULL CHECK (length(name) BETWEEN 1 AND 200),
  status text NOT NULL CHECK (status IN ('provisioning', 'active', 'suspended', 'deleting')),
  status_reason text,
  database_name text NOT NULL UNIQUE,
  owner_role text NOT NULL UNIQUE,
  login_role text NOT NULL UNIQUE,
  credential_version integer NOT NULL DEFAULT 1,
  schema_version integer NOT NULL DEFAULT 0,
  created_at timestamptz NOT NULL DEFAULT now(),
  updated_at timestamptz NOT NULL DEFAULT now()
);

-- Old slugs keep resolving for a while after a rename.
CREATE TABLE tenant_slug_aliases (
  slug text PRIMARY KEY,
  tenant_id uuid NOT NULL REFERENCES tenants (id) ON DELETE CASCADE,
  expires_at timestamptz NOT NULL
);
CREATE INDEX tenant_slug_aliases_tenant ON tenant_slug_aliases (tenant_id);

-- API tokens, stored only as SHA-256 hashes (the tokens are 32 random bytes).
CREATE TABLE tenant_api_tokens (
  id uuid PRIMARY KEY DEFAULT gen_random_uuid(),
  tenant_id uuid NOT NULL REFERENCES tenants (id) ON DELETE CASCADE,
  token_hash bytea NOT NULL UNIQUE,
  label text NOT NULL,
  created_at timestamptz NOT NULL DEFAULT now(),
  last_used_at timestamptz,
  revoked_at timestamptz
);
CREATE INDEX tenant_api_tokens_tenant ON tenant_api_tokens (tenant_id);

-- The schema rollout ledger: one row per tenant, updated by every `tenant migrate`.
CREATE TABLE tenant_migrations (
  tenant_id uuid PRIMARY KEY REFERENCES tenants (id) ON DELETE CASCADE,
  status text NOT NULL CHECK (status IN ('pending', 'running', 'succeeded', 'failed')),
  attempt integer NOT NULL DEFAULT 0,
  version integer NOT NULL,
  target_version integer NOT NULL,
  error text,
  run_id uuid,
  started_at timestamptz,
  finished_at timestamptz
);

-- Every lifecycle change of a tenant, for operators (the tamper-evident audit log comes later).
CREATE TABLE tenant_events (
  id bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
  tenant_id uuid,
  slug text NOT NULL,
  event text NOT NULL,
  actor text NOT NULL,
  detail jsonb NOT NULL DEFAULT '{}',
  at timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX tenant_events_tenant ON tenant_events (tenant_id, at);
