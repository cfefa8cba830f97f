/**
 * One task: what it is, its discussion and its history, and (for members and up) a form to change
 * it. A new version of the task re-draws the page from what the server holds.
 */
import { useState } from 'react';
import { getProject } from '../api/projects.ts';
import { getTask } from '../api/tasks.ts';
import type { Project, Task } from '../api/types.ts';
import { loadWorkflow, type Workflow } from '../api/workflow.ts';
import { LoadFailed, Loading, Notice } from '../components/Alerts.tsx';
import { formatDate, formatDateTime } from '../components/format.ts';
import { Markdown } from '../components/Markdown.tsx';
import { PageHeading } from '../components/PageHeading.tsx';
import { useLoad } from '../hooks/useAsync.ts';
import { mayEditTasks } from '../permissions.ts';
import { Link } from '../router.tsx';
import { useUser } from '../session.tsx';
import { Comments } from './Comments.tsx';
import { DeleteTask } from './DeleteTask.tsx';
import { EditTask } from './EditTask.tsx';
import { History } from './History.tsx';

export function TaskPage({ taskId }: { taskId: string }) {
  const loaded = useLoad(async () => {
    const task = await getTask(taskId);
    const [project, workflow] = await Promise.all([getProject(task.projectId), loadWorkflow(task.projectId)]);
    return { task, project, workflow };
  }, [taskId]);
  const [notice, setNotice] = useState<string | null>(null);
  if (loaded.status === 'loading') return <Loading what="the task" />;
  if (loaded.status === 'error') {
    return (
      <>
        <PageHeading title="Task" />
        <LoadFailed error={loaded.error} retry={loaded.reload} />
      </>
    );
  }
  const { task, project, workflow } = loaded.data;
  const show = (next: Task, message: string) => {
    setNotice(message);
    loaded.set((d) => ({ ...d, task: next }));
  };
  // A new version is a new view: the form starts again from what the server has.
  return <TaskView key={`${task.id}:${task.version}`} task={task} project={project} workflow={workflow} notice={notice} onChanged={show} />;
}

interface TaskViewProps {
  task: Task;
  project: Project;
  workflow: Workflow;
  notice: string | null;
  onChanged: (task: Task, notice: string) => void;
}

function TaskView({ task, project, workflow, notice, onChanged }: TaskViewProps) {
  const user = useUser();
  const [editing, setEditing] = useState(false);
  // Comments change the history too.
  const [commentTick, setCommentTick] = useState(0);
  const editable = mayEditTasks(user.role);
  return (
    <>
      <nav aria-label="Breadcrumb" className="breadcrumb">
        <Link to="/projects">Projects</Link> <span aria-hidden="true">/</span> <Link to={`/projects/${project.id}`}>{project.name}</Link>
      </nav>
      <PageHeading title={`${task.key} ${task.title}`}>
        <span className="heading-key">{task.key}</span> {task.title}
      </PageHeading>
      {notice ? <Notice>{notice}</Notice> : null}
      <dl className="facts">
        <div>
          <dt>Status</dt>
          <dd>{task.status.name}</dd>
        </div>
        <div>
          <dt>Priority</dt>
          <dd>
            <span className={`badge badge-${task.priority}`}>{task.priority}</span>
          </dd>
        </div>
        <div>
          <dt>Assignee</dt>
          <dd>{task.assignee?.displayName ?? 'Nobody'}</dd>
        </div>
        <div>
          <dt>Due</dt>
          <dd>{task.dueDate ? formatDate(task.dueDate) : 'No due date'}</dd>
        </div>
        <div>
          <dt>Labels</dt>
          <dd>{task.labels.length > 0 ? task.labels.join(', ') : 'None'}</dd>
        </div>
        <div>
          <dt>Reported by</dt>
          <dd>
            {task.reporter.displayName}, {formatDateTime(task.createdAt)}
          </dd>
        </div>
        <div>
          <dt>Changed</dt>
          <dd>
            {formatDateTime(task.updatedAt)} (version {task.version})
          </dd>
        </div>
      </dl>
      <section aria-labelledby="description" className="section">
        <h2 id="description">Description</h2>
        {task.description ? <Markdown text={task.description} /> : <p className="hint">No description.</p>}
      </section>
      {editable && !editing ? (
        <p>
          <button type="button" className="button button-primary" onClick={() => setEditing(true)}>
            Edit the task
          </button>
        </p>
      ) : null}
      {editable && editing ? (
        <EditTask
          task={task}
          workflow={workflow}
          onCancel={() => setEditing(false)}
          onSaved={(next) => {
            onChanged(next, 'The task is saved.');
          }}
          onReload={(latest) => {
            onChanged(latest, `This is the latest version (${latest.version}). Make your change again if it is still needed.`);
          }}
        />
      ) : null}
      <Comments taskId={task.id} onChanged={() => setCommentTick((n) => n + 1)} />
      <History taskId={task.id} refresh={`${task.version}:${commentTick}`} />
      {editable ? <DeleteTask task={task} project={project} /> : null}
    </>
  );
}
