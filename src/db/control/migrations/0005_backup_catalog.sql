-- The backup catalog (P7, P8, P11): every object TaskFlow writes to a repository, where each copy
-- is, and the last proof that it restores. The repositories stay the truth for the bytes (each
-- object has its manifest beside it); the catalog is what `taskflow backup list|show` and
-- retention read, and it never claims an object that was not completely written.
CREATE TABLE backup_objects (
  id bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
  kind text NOT NULL CHECK (kind IN ('snapshot', 'wal', 'export')),
  -- The object's name in every repository (`snapshots/main/20261123T020000Z.tar`).
  name text NOT NULL UNIQUE,
  -- Which PostgreSQL cluster it came from (its system identifier), and its timeline where it matters.
  cluster text NOT NULL,
  timeline integer,
  -- Exports only. No foreign key: backups of a deleted tenant are kept until retention ends them.
  tenant_id uuid,
  tenant_slug text,
  state text NOT NULL CHECK (state IN ('running', 'complete', 'failed')),
  started_at timestamptz NOT NULL,
  finished_at timestamptz,
  -- The moment of the data it holds: a snapshot's end of backup, a WAL segment's last commit, an export's start.
  data_at timestamptz,
  raw_bytes bigint,
  stored_bytes bigint,
  -- SHA-256 of the stored bytes, as in the manifest.
  sha256 text CHECK (sha256 ~ '^[0-9a-f]{64}$'),
  -- Kind-specific facts: LSNs, WAL file name, per-table row counts, tool versions.
  details jsonb NOT NULL DEFAULT '{}',
  error text,
  -- The latest successful restore of this object (verify --restore, a drill, a real restore).
  proven_at timestamptz,
  proof jsonb,
  CHECK (state <> 'complete' OR (finished_at IS NOT NULL AND stored_bytes IS NOT NULL AND sha256 IS NOT NULL))
);
CREATE INDEX backup_objects_kind_time ON backup_objects (kind, cluster, started_at);
CREATE INDEX backup_objects_tenant ON backup_objects (tenant_id, started_at) WHERE tenant_id IS NOT NULL;

-- Where each complete object is stored, and when that copy was last read back and matched its checksum.
CREATE TABLE backup_locations (
  object_id bigint NOT NULL REFERENCES backup_objects (id) ON DELETE CASCADE,
  repository text NOT NULL,
  stored_at timestamptz NOT NULL,
  verified_at timestamptz,
  PRIMARY KEY (object_id, repository)
);
