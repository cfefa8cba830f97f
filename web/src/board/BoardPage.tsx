/**
 * A project's board. Moves show at once and are then sent with the task's version (If-Match); a
 * move the server refuses is undone on screen and explained, so the board never shows a state
 * that was not saved.
 */
import { useCallback, useState } from 'react';
import { ApiError, readableMessage } from '../api/problem.ts';
import { getProject } from '../api/projects.ts';
import { allTasksOf, getTask, moveTask } from '../api/tasks.ts';
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

export function BoardPage({ projectId }: { projectId: string }) {
  const user = useUser();
  const loaded = useLoad(async () => {
    const [project, workflow, { tasks, truncated }] = await Promise.all([getProject(projectId), loadWorkflow(projectId), allTasksOf(projectId)]);
    return { project, workflow, tasks, truncated };
  }, [projectId]);
  const [busy, setBusy] = useState<ReadonlySet<string>>(new Set());
  const [moveError, setMoveError] = useState<unknown>(null);
  const [announcement, setAnnouncement] = useState('');
  const { set } = loaded;

  const replace = useCallback(
    (id: string, task: Task | null) => {
      set((data) => ({ ...data, tasks: task ? data.tasks.map((t) => (t.id === id ? task : t)) : data.tasks.filter((t) => t.id !== id) }));
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

  const move = async (task: Task, to: string) => {
    if (loaded.status !== 'ready') return;
    const target = loaded.data.workflow.statuses.find((s) => s.id === to);
    if (!target) return;
    setMoveError(null);
    setTaskBusy(task.id, true);
    replace(task.id, { ...task, status: { id: target.id, name: target.name, category: target.category } });
    try {
      const saved = await moveTask(task, to);
      replace(task.id, saved);
      setAnnouncement(`${task.key} moved to ${saved.status.name}.`);
    } catch (err) {
      if (err instanceof ApiError && err.code === 'precondition-failed') {
        // Someone else changed the task since the board was loaded: show theirs, move nothing.
        const fresh = await getTask(task.id).catch(() => task);
        replace(task.id, fresh);
        setMoveError(`${task.key} was not moved: someone else changed it meanwhile. The board now shows it as it is (${fresh.status.name}); move it again if you still want to.`);
      } else if (err instanceof ApiError && err.code === 'not-found') {
        replace(task.id, null);
        setMoveError(`${task.key} was not moved: it has been deleted.`);
      } else if (err instanceof ApiError && (err.code === 'transition-not-allowed' || err.code === 'unknown-status')) {
        // The workflow changed since the board was loaded: show the new one.
        replace(task.id, task);
        setMoveError(`${task.key} was not moved: ${readableMessage(err)} The board now shows the project's current workflow.`);
        const workflow = await loadWorkflow(projectId).catch(() => null);
        if (workflow) set((data) => ({ ...data, workflow }));
      } else {
        replace(task.id, task);
        setMoveError(err);
      }
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
  const { project, workflow, tasks, truncated } = loaded.data;
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
            set((data) => ({ ...data, tasks: [...data.tasks, task] }));
            setAnnouncement(`${task.key} added to ${task.status.name}.`);
          }}
        />
      ) : null}
      <ErrorAlert error={moveError} />
      <p className="visually-hidden" role="status">
        {announcement}
      </p>
      {truncated ? <p className="hint">The board shows the first {tasks.length} tasks; use the task list for the rest.</p> : null}
      <Board workflow={workflow} tasks={tasks} role={user.role} busy={busy} onMove={(task, to) => void move(task, to)} />
    </>
  );
}
