-- Outgoing mail. A message is written here in the same transaction as whatever caused it, so a
-- request never waits on SMTP and nothing is lost on a restart; MailWorker (src/platform/mail/)
-- sends it. Bodies can hold single-use links: they are cleared once a message is sent or has
-- failed for good, and the CHECKs below hold every writer to that.
CREATE TABLE mail_outbox (
  id bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
  kind text NOT NULL CHECK (kind ~ '^[a-z][a-z0-9-]{0,39}$'),
  -- Mail about a tenant that is deleted goes with it: its links lead nowhere any more.
  tenant_id uuid REFERENCES tenants (id) ON DELETE CASCADE,
  recipient text NOT NULL CHECK (length(recipient) BETWEEN 3 AND 254),
  subject text NOT NULL CHECK (length(subject) BETWEEN 1 AND 200),
  body_text text,
  body_html text,
  status text NOT NULL DEFAULT 'queued' CHECK (status IN ('queued', 'sending', 'sent', 'failed')),
  attempts integer NOT NULL DEFAULT 0,
  next_attempt_at timestamptz NOT NULL DEFAULT now(),
  -- The worker that holds a 'sending' message, and until when; an expired claim is taken over.
  claimed_by uuid,
  claimed_until timestamptz,
  last_error text,
  message_id text,
  created_at timestamptz NOT NULL DEFAULT now(),
  finished_at timestamptz,
  CHECK ((status IN ('sent', 'failed')) = (finished_at IS NOT NULL)),
  CHECK (status IN ('sent', 'failed') OR body_text IS NOT NULL),
  CHECK (status NOT IN ('sent', 'failed') OR (body_text IS NULL AND body_html IS NULL)),
  CHECK ((status = 'sending') = (claimed_by IS NOT NULL AND claimed_until IS NOT NULL))
);
CREATE INDEX mail_outbox_due ON mail_outbox (next_attempt_at, id) WHERE status = 'queued';
CREATE INDEX mail_outbox_claimed ON mail_outbox (claimed_until) WHERE status = 'sending';
CREATE INDEX mail_outbox_finished ON mail_outbox (finished_at) WHERE status IN ('sent', 'failed');
CREATE INDEX mail_outbox_tenant ON mail_outbox (tenant_id) WHERE tenant_id IS NOT NULL;
