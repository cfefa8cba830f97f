-- Workflows per project, richer tasks (assignee, reporter, labels, full-text search), comments and
-- a history of every change. Runs as the tenant's owner role; the login role gets DML through
-- default privileges. Existing data is converted: every project gets the default workflow
-- (To do, In progress, Done; every move allowed to everybody, as src/app/work/workflows/default.ts
-- says for new projects), and each task's old status text moves to the status of that category.

-- A project's workflow: its statuses in board order, and the moves allowed between them. The
-- workflow's version is the ETag of GET /api/projects/{id}/workflow.
ALTER TABLE app.projects ADD COLUMN workflow_version integer NOT NULL DEFAULT 1;

CREATE TABLE app.statuses (
  id uuid PRIMARY KEY DEFAULT gen_random_uuid(),
  project_id uuid NOT NULL REFERENCES app.projects (id) ON DELETE CASCADE,
  name text NOT NULL CHECK (length(name) BETWEEN 1 AND 50 AND name = btrim(name)),
  name_key text GENERATED ALWAYS AS (lower(name)) STORED,
  category text NOT NULL CHECK (category IN ('todo', 'in_progress', 'done')),
  position integer NOT NULL CHECK (position >= 0),
  -- The target of the composite keys below: a task's or a transition's status is its project's.
  UNIQUE (project_id, id),
  -- Deferred, so one change can swap two statuses' places or names.
  CONSTRAINT statuses_position_unique UNIQUE (project_id, position) DEFERRABLE INITIALLY DEFERRED,
  CONSTRAINT statuses_name_unique UNIQUE (project_id, name_key) DEFERRABLE INITIALLY DEFERRED
);

CREATE TABLE app.transitions (
  project_id uuid NOT NULL,
  from_status_id uuid NOT NULL,
  to_status_id uuid NOT NULL,
  -- Null: everybody who may edit tasks; otherwise only these roles (an API token counts as a member).
  roles text[] CHECK (roles IS NULL OR (cardinality(roles) BETWEEN 1 AND 3 AND roles <@ ARRAY['member', 'admin', 'owner'])),
  PRIMARY KEY (project_id, from_status_id, to_status_id),
  FOREIGN KEY (project_id, from_status_id) REFERENCES app.statuses (project_id, id) ON DELETE CASCADE,
  FOREIGN KEY (project_id, to_status_id) REFERENCES app.statuses (project_id, id) ON DELETE CASCADE,
  CHECK (from_status_id <> to_status_id)
);

INSERT INTO app.statuses (project_id, name, category, position)
SELECT p.id, d.name, d.category, d.position
  FROM app.projects p
 CROSS JOIN (VALUES ('To do', 'todo', 0), ('In progress', 'in_progress', 1), ('Done', 'done', 2)) AS d (name, category, position);

INSERT INTO app.transitions (project_id, from_status_id, to_status_id)
SELECT a.project_id, a.id, b.id
  FROM app.statuses a JOIN app.statuses b ON b.project_id = a.project_id AND b.id <> a.id;

-- Tasks: the status becomes one of the project's statuses (a composite key, so it can never be
-- another project's), and they gain an assignee, a reporter, labels and a search document.
ALTER TABLE app.tasks
  ADD COLUMN status_id uuid,
  ADD COLUMN assignee_id uuid REFERENCES app.users (id),
  -- 'user' (reporter_id set), 'api-token' or 'system' (TaskFlow itself: this migration, the demo).
  ADD COLUMN reporter_kind text NOT NULL DEFAULT 'system' CHECK (reporter_kind IN ('user', 'api-token', 'system')),
  ADD COLUMN reporter_id uuid REFERENCES app.users (id),
  ADD COLUMN labels text[] NOT NULL DEFAULT '{}' CHECK (cardinality(labels) <= 20),
  ADD COLUMN priority_rank smallint GENERATED ALWAYS AS (
    CASE priority WHEN 'low' THEN 1 WHEN 'medium' THEN 2 WHEN 'high' THEN 3 ELSE 4 END
  ) STORED,
  ADD COLUMN search tsvector GENERATED ALWAYS AS (
    setweight(to_tsvector('english', title), 'A') || setweight(to_tsvector('english', description), 'B')
  ) STORED,
  ADD CONSTRAINT tasks_reporter CHECK ((reporter_kind = 'user') = (reporter_id IS NOT NULL));

UPDATE app.tasks t SET status_id = s.id FROM app.statuses s WHERE s.project_id = t.project_id AND s.category = t.status;

ALTER TABLE app.tasks
  ALTER COLUMN status_id SET NOT NULL,
  -- NO ACTION, not CASCADE: a status is only removed after its tasks have been moved elsewhere.
  ADD CONSTRAINT tasks_status FOREIGN KEY (project_id, status_id) REFERENCES app.statuses (project_id, id),
  ALTER COLUMN reporter_kind DROP DEFAULT,
  DROP COLUMN status;

CREATE INDEX tasks_status ON app.tasks (status_id);
CREATE INDEX tasks_assignee ON app.tasks (assignee_id) WHERE assignee_id IS NOT NULL;
CREATE INDEX tasks_labels ON app.tasks USING gin (labels);
CREATE INDEX tasks_search ON app.tasks USING gin (search);
CREATE INDEX tasks_project_updated ON app.tasks (project_id, updated_at, id);
CREATE INDEX tasks_project_priority ON app.tasks (project_id, priority_rank, created_at, id);
CREATE INDEX tasks_project_due ON app.tasks (project_id, (COALESCE(due_date, 'infinity'::date)), created_at, id);

CREATE TABLE app.comments (
  id uuid PRIMARY KEY DEFAULT gen_random_uuid(),
  task_id uuid NOT NULL REFERENCES app.tasks (id) ON DELETE CASCADE,
  author_kind text NOT NULL CHECK (author_kind IN ('user', 'api-token', 'system')),
  author_id uuid REFERENCES app.users (id),
  body text NOT NULL CHECK (length(body) BETWEEN 1 AND 20000),
  created_at timestamptz NOT NULL DEFAULT clock_timestamp(),
  -- Null until the body is changed.
  edited_at timestamptz,
  CHECK ((author_kind = 'user') = (author_id IS NOT NULL))
);
CREATE INDEX comments_page ON app.comments (task_id, created_at, id);

-- The history of a task: one row per change, written in the transaction that makes the change.
CREATE TABLE app.task_events (
  id uuid PRIMARY KEY DEFAULT gen_random_uuid(),
  task_id uuid NOT NULL REFERENCES app.tasks (id) ON DELETE CASCADE,
  actor_kind text NOT NULL CHECK (actor_kind IN ('user', 'api-token', 'system')),
  actor_id uuid REFERENCES app.users (id),
  kind text NOT NULL CHECK (kind IN ('created', 'changed', 'commented', 'comment-edited', 'comment-deleted')),
  -- For 'changed': which field; before and after are its values (JSON) on either side.
  field text CHECK ((kind = 'changed') = (field IS NOT NULL)),
  before jsonb,
  after jsonb,
  created_at timestamptz NOT NULL DEFAULT clock_timestamp(),
  CHECK ((actor_kind = 'user') = (actor_id IS NOT NULL))
);
CREATE INDEX task_events_page ON app.task_events (task_id, created_at, id);
