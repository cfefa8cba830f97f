/** Workflow commands: reading a project's workflow, and replacing it in one transaction. */
import { AppError } from '../../../errors.ts';
import type { WorkActor } from '../../policies.ts';
import type { Db } from '../../tenant-db.ts';
import { actorColumns } from '../actor.ts';
import { RANK_GAP } from '../tasks/rank.ts';
import type { CategoryValue } from '../schema.ts';
import { planWorkflow, type CurrentStatus, type WorkflowPlan } from './plan.ts';
import type { TransitionRoleValue, WorkflowChange, WorkflowView } from './schema.ts';

function noSuchProject(): AppError {
  return new AppError('not-found', 'no such project');
}

/** A project's workflow with the number of tasks in each status. */
export async function getWorkflow(props: { db: Db; projectId: string }): Promise<WorkflowView> {
  const { db, projectId } = props;
  const project = await db.query<{ workflow_version: number }>('SELECT workflow_version FROM app.projects WHERE id = $1', [projectId]);
  const version = project.rows[0]?.workflow_version;
  if (version === undefined) throw noSuchProject();
  const statuses = await db.query<{ id: string; name: string; category: CategoryValue; position: number; task_count: number }>(
    `SELECT s.id, s.name, s.category, s.position, (SELECT count(*)::int FROM app.tasks t WHERE t.status_id = s.id) AS task_count
       FROM app.statuses s WHERE s.project_id = $1 ORDER BY s.position`,
    [projectId],
  );
  const transitions = await db.query<{ from_status_id: string; to_status_id: string; roles: TransitionRoleValue[] | null }>(
    `SELECT t.from_status_id, t.to_status_id, t.roles FROM app.transitions t
       JOIN app.statuses f ON f.id = t.from_status_id JOIN app.statuses o ON o.id = t.to_status_id
      WHERE t.project_id = $1 ORDER BY f.position, o.position`,
    [projectId],
  );
  return {
    projectId,
    version,
    statuses: statuses.rows.map((s) => ({ id: s.id, name: s.name, category: s.category, position: s.position, taskCount: s.task_count })),
    transitions: transitions.rows.map((t) => ({ fromStatusId: t.from_status_id, toStatusId: t.to_status_id, roles: t.roles })),
  };
}

/**
 * Writes a plan: statuses updated and created, the tasks of removed statuses moved (each move
 * bumps the task's version and is recorded in its history; the project's lock is the board's lock
 * of tasks/rank.ts), transitions replaced, removed statuses
 * deleted. Run it in a transaction, after locking the project and its statuses.
 */
async function applyPlan(db: Db, projectId: string, plan: WorkflowPlan, actor: WorkActor): Promise<void> {
  const kept = plan.statuses.filter((s) => s.id !== null);
  if (kept.length > 0) {
    await db.query(
      `UPDATE app.statuses s SET name = u.name, category = u.category, position = u.position
         FROM unnest($2::uuid[], $3::text[], $4::text[], $5::int[]) AS u (id, name, category, position)
        WHERE s.id = u.id AND s.project_id = $1`,
      [projectId, kept.map((s) => s.id), kept.map((s) => s.name), kept.map((s) => s.category), kept.map((s) => s.position)],
    );
  }
  const idByName = new Map(kept.map((s) => [s.name, s.id ?? '']));
  const created = plan.statuses.filter((s) => s.id === null);
  if (created.length > 0) {
    const res = await db.query<{ id: string; name: string }>(
      `INSERT INTO app.statuses (project_id, name, category, position)
       SELECT $1, u.name, u.category, u.position FROM unnest($2::text[], $3::text[], $4::int[]) AS u (name, category, position)
       RETURNING id, name`,
      [projectId, created.map((s) => s.name), created.map((s) => s.category), created.map((s) => s.position)],
    );
    for (const row of res.rows) idByName.set(row.name, row.id);
  }
  const statusOf = (name: string) => {
    const status = plan.statuses.find((s) => s.name === name);
    const id = idByName.get(name);
    if (!status || id === undefined) throw new Error(`plan names an unknown status '${name}'`);
    return { id, name: status.name, category: status.category };
  };

  const [actorKind, actorId] = actorColumns(actor);
  for (const removed of plan.removed) {
    if (removed.moveTo === null) continue;
    const target = statusOf(removed.moveTo);
    // They go to the end of their new column, in the order they had in the old one.
    await db.query(
      `WITH target AS (SELECT COALESCE(max(rank), 0) AS last FROM app.tasks WHERE status_id = $3),
       ordered AS (SELECT id, row_number() OVER (ORDER BY rank, id) AS n FROM app.tasks WHERE project_id = $1 AND status_id = $2),
       moved AS (
         UPDATE app.tasks t SET status_id = $3, rank = target.last + ordered.n * ${RANK_GAP}, version = version + 1, updated_at = clock_timestamp()
           FROM ordered, target WHERE t.id = ordered.id RETURNING t.id
       )
       INSERT INTO app.task_events (task_id, actor_kind, actor_id, kind, field, before, after)
       SELECT id, $4, $5, 'changed', 'status', $6::jsonb, $7::jsonb FROM moved`,
      [projectId, removed.id, target.id, actorKind, actorId, JSON.stringify({ id: removed.id, name: removed.name, category: removed.category }), JSON.stringify(target)],
    );
  }

  await db.query('DELETE FROM app.transitions WHERE project_id = $1', [projectId]);
  if (plan.transitions.length > 0) {
    const rows = plan.transitions.map((t) => ({ from: statusOf(t.from).id, to: statusOf(t.to).id, roles: t.roles }));
    await db.query(
      `INSERT INTO app.transitions (project_id, from_status_id, to_status_id, roles)
       SELECT $1, (x ->> 'from')::uuid, (x ->> 'to')::uuid,
              CASE WHEN jsonb_typeof(x -> 'roles') = 'array' THEN ARRAY(SELECT jsonb_array_elements_text(x -> 'roles')) END
         FROM jsonb_array_elements($2::jsonb) AS x`,
      [projectId, JSON.stringify(rows)],
    );
  }
  if (plan.removed.length > 0) {
    await db.query('DELETE FROM app.statuses WHERE project_id = $1 AND id = ANY($2::uuid[])', [projectId, plan.removed.map((r) => r.id)]);
  }
}

/** Gives a project just created its first workflow; run in the transaction that created it. */
export async function createWorkflow(props: { db: Db; projectId: string; workflow: WorkflowChange; actor: WorkActor }): Promise<void> {
  await applyPlan(props.db, props.projectId, planWorkflow([], props.workflow), props.actor);
}

/**
 * Replaces a project's workflow. With `versions` (from If-Match) only if the workflow is still at
 * one of them. Tasks in removed statuses move to the statuses named in `moves`; a removed status
 * with tasks and no move is refused, so no task is ever left in a status that no longer exists.
 * Run it in a transaction: the project and its statuses are locked, so no task can be created in
 * or moved into a status while it is being removed.
 */
export async function replaceWorkflow(props: { db: Db; projectId: string; change: WorkflowChange; versions: number[] | null; actor: WorkActor }): Promise<WorkflowView> {
  const { db, projectId, versions } = props;
  const project = await db.query<{ workflow_version: number }>('SELECT workflow_version FROM app.projects WHERE id = $1 FOR UPDATE', [projectId]);
  const version = project.rows[0]?.workflow_version;
  if (version === undefined) throw noSuchProject();
  if (versions !== null && !versions.includes(version)) {
    const detail = versions.length === 0 ? `If-Match names no version in our form; the workflow's ETag is "${version}"` : `the workflow is at version ${version}`;
    throw new AppError('precondition-failed', detail, { extra: { currentVersion: version } });
  }
  const statuses = await db.query<{ id: string; name: string; category: CategoryValue }>(
    'SELECT id, name, category FROM app.statuses WHERE project_id = $1 ORDER BY position FOR UPDATE',
    [projectId],
  );
  const counts = await db.query<{ status_id: string; n: number }>('SELECT status_id, count(*)::int AS n FROM app.tasks WHERE project_id = $1 GROUP BY status_id', [projectId]);
  const countOf = new Map(counts.rows.map((r) => [r.status_id, r.n]));
  const current: CurrentStatus[] = statuses.rows.map((s) => ({ ...s, taskCount: countOf.get(s.id) ?? 0 }));
  await applyPlan(db, projectId, planWorkflow(current, props.change), props.actor);
  await db.query('UPDATE app.projects SET workflow_version = workflow_version + 1, updated_at = clock_timestamp() WHERE id = $1', [projectId]);
  return getWorkflow({ db, projectId });
}
