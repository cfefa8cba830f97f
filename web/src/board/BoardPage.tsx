/**
 * A project's board. Moves show at once and are then sent with the task's version (If-Match); a
 * move the server refuses is undone on screen by reading the board again, and explained, so the
 * board never shows a state that was not saved.
 */
import { useCallback, useState } from 'react';
import { listPeople } from '../api/people.ts';
import { ApiError, readableMessage } from '../api/problem.ts';
import { getProject } from '../api/projects.ts';
import { allTasksOf, moveTask, type Placement } from '../api/tasks.ts';
import type { Task } from '../api/types.ts';
import { loadWorkflow } from '../api/workflow.ts';
import { ErrorAlert, LoadFailed, Loading } from '../components/Alerts.tsx';
import { PageHeading } from '../components/PageHeading.tsx';
import { useLoad } from '../hooks/useAsync.ts';
import { mayEditTasks } from '../permissions.ts';
import { ProjectTabs } from '../pages/ProjectTabs.tsx';
import { useUser } from '../session.tsx';
import { Board } from './Board.tsx';
import { NewTaskForm } from './NewTaskForm.tsx';
import { cardsOf, withMove } from './placement.ts';

/** Why a move was refused, for the board to say; the board is then read again. */
function refusal(task: Task, err: unknown): unknown {
  if (!(err instanceof ApiError)) return err;
  switch (err.code) {
    case 'precondition-failed':
      return `${task.key} was not moved: someone else changed it meanwhile. The board now shows it as it is; move it again if you still want to.`;
    case 'invalid-position':
      return `${task.key} was not moved: the cards around the place you chose have moved meanwhile. The board now shows the current order; move it again if you still want to.`;
    case 'not-found':
      return `${task.key} was not moved: it has been deleted.`;
    case 'transition-not-allowed':
    case 'unknown-status':
      return `${task.key} was not moved: ${readableMessage(err)} The board now shows the project's current workflow.`;
    default:
      return err;
  }
}

export function BoardPage({ projectId }: { projectId: string }) {
  const user = useUser();
  const loaded = useLoad(async () => {
    const [project, workflow, { tasks, truncated }, people] = await Promise.all([getProject(projectId), loadWorkflow(projectId), allTasksOf(projectId), listPeople()]);
    return { project, workflow, tasks, truncated, people };
  }, [projectId]);
  const [busy, setBusy] = useState<ReadonlySet<string>>(new Set());
  const [moveError, setMoveError] = useState<unknown>(null);
  const [announcement, setAnnouncement] = useState('');
  const { set } = loaded;

  const replace = useCallback(
    (task: Task, said: string | null) => {
      set((data) => ({ ...data, tasks: data.tasks.map((t) => (t.id === task.id ? task : t)) }));
      if (said !== null) setAnnouncement(said);
    },
    [set],
  );
  const setTaskBusy = (id: string, on: boolean) => {
    setBusy((old) => {
      const next = new Set(old);
      if (on) next.add(id);
      else next.delete(id);
      return next;
    });
  };
  /** Reads the board again: what the server holds is what the board shows. */
  const reread = async () => {
    const [workflow, { tasks, truncated }] = await Promise.all([loadWorkflow(projectId), allTasksOf(projectId)]);
    set((data) => ({ ...data, workflow, tasks, truncated }));
  };

  const move = async (task: Task, to: string, placement: Placement) => {
    if (loaded.status !== 'ready') return;
    const target = loaded.data.workflow.statuses.find((s) => s.id === to);
    if (!target) return;
    setMoveError(null);
    setTaskBusy(task.id, true);
    const moved = { ...task, status: { id: target.id, name: target.name, category: target.category } };
    const column = cardsOf(withMove(loaded.data.tasks, moved, placement), to);
    set((data) => ({ ...data, tasks: withMove(data.tasks, moved, placement) }));
    try {
      const within = to === task.status.id;
      const saved = await moveTask(task, within ? null : to, placement);
      replace(saved, null);
      const place = column.findIndex((t) => t.id === task.id) + 1;
      setAnnouncement(within ? `${task.key} moved to place ${place} of ${column.length} in ${target.name}.` : `${task.key} moved to ${saved.status.name}.`);
    } catch (err) {
      setMoveError(refusal(task, err));
      await reread().catch((failed: unknown) => setMoveError(failed));
    } finally {
      setTaskBusy(task.id, false);
    }
  };

  if (loaded.status === 'loading') return <Loading what="the board" />;
  if (loaded.status === 'error') {
    return (
      <>
        <PageHeading title="Board" />
        <LoadFailed error={loaded.error} retry={loaded.reload} />
      </>
    );
  }
  const { project, workflow, tasks, truncated, people } = loaded.data;
  return (
    <>
      <PageHeading title={`${project.name} board`}>
        <span className="heading-key">{project.key}</span> {project.name}
      </PageHeading>
      <ProjectTabs project={project} current="board" />
      {mayEditTasks(user.role) ? (
        <NewTaskForm
          projectId={project.id}
          onCreated={(task) => {
            set((data) => ({ ...data, tasks: withMove(data.tasks, task, null) }));
            setAnnouncement(`${task.key} added to ${task.status.name}.`);
          }}
        />
      ) : null}
      <ErrorAlert error={moveError} />
      <p className="visually-hidden" role="status">
        {announcement}
      </p>
      {truncated ? <p className="hint">The board shows the first {tasks.length} tasks; use the task list for the rest.</p> : null}
      <Board
        workflow={workflow}
        tasks={tasks}
        role={user.role}
        people={people}
        busy={busy}
        onMove={(task, to, placement) => void move(task, to, placement)}
        onChanged={replace}
      />
    </>
  );
}
