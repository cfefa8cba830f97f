/** Project commands: each takes one props object with the tenant's database and does one thing. */
import { AppError } from '../../../errors.ts';
import type { WorkActor } from '../../policies.ts';
import type { Db } from '../../tenant-db.ts';
import { createWorkflow } from '../workflows/commands.ts';
import { DEFAULT_WORKFLOW } from '../workflows/default.ts';
import { afterCursorSql, decodeCursor, DEFAULT_PAGE_SIZE, positionSql, toPage, type Page } from '../pagination.ts';
import type { CreateProjectInput, ProjectView, UpdateProjectInput } from './schema.ts';

interface ProjectRow {
  id: string;
  key: string;
  name: string;
  description: string;
  created_at: Date;
  updated_at: Date;
  page_micros: string;
}

const COLUMNS = `p.id, p.key, p.name, p.description, p.created_at, p.updated_at, ${positionSql('p')} AS page_micros`;

function view(row: ProjectRow): ProjectView {
  return {
    id: row.id,
    key: row.key,
    name: row.name,
    description: row.description,
    createdAt: row.created_at.toISOString(),
    updatedAt: row.updated_at.toISOString(),
  };
}

function notFound(): AppError {
  return new AppError('not-found', 'no such project');
}

/**
 * Creates a project with the default workflow (workflows/default.ts); 409 if its key is taken.
 * Run it in a transaction, so a project never exists without its workflow.
 */
export async function createProject(props: { db: Db; actor: WorkActor; input: CreateProjectInput }): Promise<ProjectView> {
  const { db, input } = props;
  // ON CONFLICT rather than catching 23505: a failed statement would abort the whole transaction.
  const res = await db.query<ProjectRow>(
    `INSERT INTO app.projects AS p (key, name, description) VALUES ($1, $2, $3) ON CONFLICT (key) DO NOTHING RETURNING ${COLUMNS}`,
    [input.key, input.name, input.description ?? ''],
  );
  const row = res.rows[0];
  if (!row) throw new AppError('conflict', `a project with key '${input.key}' already exists`);
  await createWorkflow({ db, projectId: row.id, workflow: DEFAULT_WORKFLOW, actor: props.actor });
  return view(row);
}

/** Throws 404 unless the project exists. */
export async function assertProjectExists(db: Db, id: string): Promise<void> {
  const res = await db.query('SELECT 1 FROM app.projects WHERE id = $1', [id]);
  if (res.rowCount === 0) throw notFound();
}

/** One page of projects, oldest first. */
export async function listProjects(props: { db: Db; cursor?: string; limit?: number }): Promise<Page<ProjectView>> {
  const limit = props.limit ?? DEFAULT_PAGE_SIZE;
  const params: unknown[] = [];
  const where = props.cursor === undefined ? 'TRUE' : afterCursorSql('p', decodeCursor(props.cursor), params);
  params.push(limit + 1);
  const res = await props.db.query<ProjectRow>(`SELECT ${COLUMNS} FROM app.projects p WHERE ${where} ORDER BY p.created_at, p.id LIMIT $${params.length}`, params);
  return toPage(res.rows, limit, view);
}

export async function getProject(props: { db: Db; id: string }): Promise<ProjectView> {
  const res = await props.db.query<ProjectRow>(`SELECT ${COLUMNS} FROM app.projects p WHERE p.id = $1`, [props.id]);
  const row = res.rows[0];
  if (!row) throw notFound();
  return view(row);
}

/**
 * What a change conditional on a version answers for a project, which has none: 404 if there is no
 * such project (preconditions only count for a request that would otherwise succeed), else 412.
 */
async function unversioned(db: Db, id: string): Promise<AppError> {
  const res = await db.query('SELECT 1 FROM app.projects WHERE id = $1', [id]);
  if (res.rowCount === 0) return notFound();
  return new AppError('precondition-failed', 'projects have no versions, so an If-Match naming one never matches; send If-Match only with tasks (If-Match: * is accepted)');
}

/**
 * Changes a project's name or description. `versions` comes from If-Match: projects have no ETag,
 * so any list of versions (even an empty one) fails the precondition rather than being ignored.
 */
export async function updateProject(props: { db: Db; id: string; changes: UpdateProjectInput; versions: number[] | null }): Promise<ProjectView> {
  const { db, id, changes, versions } = props;
  if (versions !== null) throw await unversioned(db, id);
  const res = await db.query<ProjectRow>(
    `UPDATE app.projects AS p SET name = COALESCE($2, p.name), description = COALESCE($3, p.description), updated_at = clock_timestamp()
     WHERE p.id = $1 RETURNING ${COLUMNS}`,
    [id, changes.name ?? null, changes.description ?? null],
  );
  const row = res.rows[0];
  if (!row) throw notFound();
  return view(row);
}

/** Deletes a project and, with it, all its tasks; `versions` (from If-Match) as for updateProject. */
export async function deleteProject(props: { db: Db; id: string; versions: number[] | null }): Promise<void> {
  const { db, id, versions } = props;
  if (versions !== null) throw await unversioned(db, id);
  const res = await db.query('DELETE FROM app.projects WHERE id = $1', [id]);
  if (res.rowCount === 0) throw notFound();
}
