-- Accounts of the tenant's staff: users, sessions, second factors, password resets, invitations.
-- Secrets are stored only as hashes (passwords: argon2id; tokens: SHA-256 of 32 random bytes);
-- TOTP secrets, which the server must read back, are encrypted with a key derived from the master key.
CREATE TABLE app.users (
  id uuid PRIMARY KEY DEFAULT gen_random_uuid(),
  -- Normalised (lower case, ASCII) by the application; unique per tenant.
  email text NOT NULL UNIQUE CHECK (email = lower(email) AND length(email) BETWEEN 3 AND 254),
  display_name text NOT NULL CHECK (length(display_name) BETWEEN 1 AND 200),
  role text NOT NULL CHECK (role IN ('owner', 'admin', 'member', 'viewer')),
  status text NOT NULL DEFAULT 'active' CHECK (status IN ('active', 'deactivated')),
  password_hash text NOT NULL,
  password_changed_at timestamptz NOT NULL DEFAULT clock_timestamp(),
  totp_secret bytea,
  totp_enabled_at timestamptz,
  -- The last TOTP time step accepted, so a code cannot be used twice.
  totp_last_step bigint,
  created_at timestamptz NOT NULL DEFAULT clock_timestamp(),
  updated_at timestamptz NOT NULL DEFAULT clock_timestamp(),
  deactivated_at timestamptz
);
CREATE INDEX users_page ON app.users (created_at, id);

CREATE TABLE app.sessions (
  id uuid PRIMARY KEY DEFAULT gen_random_uuid(),
  token_hash bytea NOT NULL UNIQUE,
  user_id uuid NOT NULL REFERENCES app.users (id) ON DELETE CASCADE,
  -- 'mfa': the password was right and the second factor is still owed; 'active': signed in.
  stage text NOT NULL CHECK (stage IN ('mfa', 'active')),
  created_at timestamptz NOT NULL DEFAULT clock_timestamp(),
  last_seen_at timestamptz NOT NULL DEFAULT clock_timestamp(),
  expires_at timestamptz NOT NULL,
  reauthenticated_at timestamptz NOT NULL DEFAULT clock_timestamp(),
  ip inet,
  user_agent text CHECK (length(user_agent) <= 512),
  ended_at timestamptz,
  end_reason text
);
CREATE INDEX sessions_user_open ON app.sessions (user_id) WHERE ended_at IS NULL;

CREATE TABLE app.recovery_codes (
  user_id uuid NOT NULL REFERENCES app.users (id) ON DELETE CASCADE,
  code_hash bytea NOT NULL,
  used_at timestamptz,
  PRIMARY KEY (user_id, code_hash)
);

CREATE TABLE app.password_resets (
  id uuid PRIMARY KEY DEFAULT gen_random_uuid(),
  token_hash bytea NOT NULL UNIQUE,
  user_id uuid NOT NULL REFERENCES app.users (id) ON DELETE CASCADE,
  created_at timestamptz NOT NULL DEFAULT clock_timestamp(),
  expires_at timestamptz NOT NULL,
  used_at timestamptz,
  superseded_at timestamptz
);
CREATE INDEX password_resets_user ON app.password_resets (user_id);

CREATE TABLE app.invitations (
  id uuid PRIMARY KEY DEFAULT gen_random_uuid(),
  token_hash bytea NOT NULL UNIQUE,
  email text NOT NULL CHECK (email = lower(email) AND length(email) BETWEEN 3 AND 254),
  role text NOT NULL CHECK (role IN ('owner', 'admin', 'member', 'viewer')),
  -- Null for the first owner's setup invitation, which an operator issues.
  invited_by uuid REFERENCES app.users (id) ON DELETE SET NULL,
  created_at timestamptz NOT NULL DEFAULT clock_timestamp(),
  expires_at timestamptz NOT NULL,
  accepted_at timestamptz,
  accepted_user_id uuid REFERENCES app.users (id) ON DELETE SET NULL,
  revoked_at timestamptz
);
CREATE INDEX invitations_email ON app.invitations (email);

-- Tenant-wide account settings: one row.
CREATE TABLE app.account_settings (
  singleton boolean PRIMARY KEY DEFAULT true CHECK (singleton),
  require_second_factor boolean NOT NULL DEFAULT false,
  updated_at timestamptz NOT NULL DEFAULT clock_timestamp()
);
INSERT INTO app.account_settings DEFAULT VALUES;
