/**
 * All tasks, or one project's, as a list: filtered (project, status, assignee, priority, label,
 * words), sorted, a page at a time. The filters live in the address, so a list can be shared.
 */
import { useState } from 'react';
import type { SubmitEvent } from 'react';
import { listPeople } from '../api/people.ts';
import { allProjects } from '../api/projects.ts';
import { listTasks, projectLabels } from '../api/tasks.ts';
import { CATEGORIES, PRIORITIES, type Person, type Project, type Task } from '../api/types.ts';
import { CATEGORY_NAMES, loadWorkflow, type Workflow } from '../api/workflow.ts';
import { ErrorAlert, LoadFailed, Loading } from '../components/Alerts.tsx';
import { SelectField, TextField } from '../components/Fields.tsx';
import { formatDate } from '../components/format.ts';
import { PageHeading } from '../components/PageHeading.tsx';
import { useAction, useLoad } from '../hooks/useAsync.ts';
import { Link, navigate } from '../router.tsx';
import { ProjectTabs } from './ProjectTabs.tsx';
import { parseTaskQuery, taskQueryPath, type TaskQuery } from './taskQuery.ts';

export function TaskListPage({ query }: { query: string }) {
  const parsed = parseTaskQuery(query);
  const projectId = parsed.filter.projectId ?? null;
  const choices = useLoad(async () => {
    const [projects, people] = await Promise.all([allProjects(), listPeople()]);
    return { projects, people };
  }, []);
  const workflow = useLoad(() => (projectId ? loadWorkflow(projectId) : Promise.resolve(null)), [projectId]);
  const labels = useLoad(() => (projectId ? projectLabels(projectId) : Promise.resolve([])), [projectId]);
  const tasks = useLoad(() => listTasks(parsed.filter, parsed.order), [query]);
  const more = useAction(async (cursor: string) => {
    const page = await listTasks(parsed.filter, parsed.order, cursor);
    tasks.set((loaded) => ({ items: [...loaded.items, ...page.items], nextCursor: page.nextCursor }));
  });
  const project = choices.status === 'ready' && projectId ? (choices.data.projects.find((p) => p.id === projectId) ?? null) : null;

  return (
    <>
      <PageHeading title={project ? `${project.name} tasks` : 'Tasks'}>{project ? <>{project.name}: tasks</> : 'Tasks'}</PageHeading>
      {project ? <ProjectTabs project={project} current="list" /> : null}
      {choices.status === 'error' ? <LoadFailed error={choices.error} retry={choices.reload} /> : null}
      {choices.status === 'ready' ? (
        <Filters
          key={query}
          query={parsed}
          projects={choices.data.projects}
          people={choices.data.people}
          workflow={workflow.status === 'ready' ? workflow.data : null}
          labels={labels.status === 'ready' ? labels.data.map((l) => l.name) : []}
        />
      ) : null}
      {tasks.status === 'loading' ? <Loading what="tasks" /> : null}
      {tasks.status === 'error' ? <LoadFailed error={tasks.error} retry={tasks.reload} /> : null}
      {tasks.status === 'ready' ? (
        <>
          <TaskTable tasks={tasks.data.items} projects={choices.status === 'ready' ? choices.data.projects : []} />
          {tasks.data.nextCursor !== null ? (
            <div className="more">
              <ErrorAlert error={more.error} />
              <button type="button" className="button" disabled={more.pending} onClick={() => void more.run(tasks.data.nextCursor ?? '')}>
                Show more tasks
              </button>
            </div>
          ) : null}
        </>
      ) : null}
    </>
  );
}

interface FiltersProps {
  query: TaskQuery;
  projects: Project[];
  people: Person[];
  /** The chosen project's workflow, for its statuses; without a project, statuses are filtered by category. */
  workflow: Workflow | null;
  /** The labels used in the chosen project, offered as the label is typed. */
  labels: string[];
}

function Filters({ query, projects, people, workflow, labels }: FiltersProps) {
  const [form, setForm] = useState({
    project: query.filter.projectId ?? '',
    status: query.filter.status ?? query.filter.category ?? '',
    assignee: query.filter.assignee ?? '',
    priority: query.filter.priority ?? '',
    label: query.filter.label ?? '',
    q: query.filter.q ?? '',
    sort: query.order.sort ? `${query.order.sort}:${query.order.order ?? (query.order.sort === 'relevance' ? 'desc' : 'asc')}` : '',
  });
  const byProject = form.project !== '' && workflow !== null && workflow.projectId === form.project;
  const statusOptions = byProject ? workflow.statuses.map((s) => ({ value: s.id, label: s.name })) : CATEGORIES.map((c) => ({ value: c, label: CATEGORY_NAMES[c] }));
  const submit = (event: SubmitEvent<HTMLFormElement>) => {
    event.preventDefault();
    const orNull = (value: string) => (value.trim() === '' ? null : value.trim());
    const category = CATEGORIES.find((c) => c === form.status) ?? null;
    const [sort, order] = form.sort.split(':');
    // Written out as the address says it, then read back: what the list shows is what the address holds.
    const chosen: TaskQuery = {
      filter: {
        projectId: orNull(form.project),
        status: category ? null : orNull(form.status),
        category,
        assignee: orNull(form.assignee),
        priority: PRIORITIES.find((p) => p === form.priority) ?? null,
        label: orNull(form.label),
        q: orNull(form.q),
      },
      // Relevance orders a search; without words the server's default order stands in for it.
      order: form.sort === '' || (form.sort.startsWith('relevance:') && orNull(form.q) === null) ? {} : parseTaskQuery(`sort=${sort ?? ''}&order=${order ?? ''}`).order,
    };
    navigate(taskQueryPath(chosen));
  };
  const field = (name: keyof typeof form) => ({
    name,
    value: form[name],
    onChange: (e: { target: { value: string } }) => setForm({ ...form, [name]: e.target.value, ...(name === 'project' ? { status: '' } : {}) }),
  });
  return (
    <form onSubmit={submit} className="form form-inline filters" aria-label="Filter tasks">
      <TextField label="Words" type="search" hint='Title and description; "a phrase", -word' {...field('q')} />
      <SelectField label="Project" options={[{ value: '', label: 'All projects' }, ...projects.map((p) => ({ value: p.id, label: `${p.key} ${p.name}` }))]} {...field('project')} />
      <SelectField label="Status" options={[{ value: '', label: 'Any status' }, ...statusOptions]} {...field('status')} />
      <SelectField label="Assignee" options={[{ value: '', label: 'Anybody' }, { value: 'none', label: 'Nobody' }, ...people.map((p) => ({ value: p.id, label: p.displayName }))]} {...field('assignee')} />
      <SelectField label="Priority" options={[{ value: '', label: 'Any priority' }, ...PRIORITIES.map((p) => ({ value: p, label: p }))]} {...field('priority')} />
      <TextField label="Label" list="project-labels" autoComplete="off" {...field('label')} />
      <datalist id="project-labels">
        {labels.map((l) => (
          <option key={l} value={l} />
        ))}
      </datalist>
      <SelectField
        label="Order"
        hint="By default: best match first when searching, oldest first otherwise."
        options={[
          { value: '', label: 'Default' },
          { value: 'relevance:desc', label: 'Best match' },
          { value: 'created:asc', label: 'Oldest first' },
          { value: 'created:desc', label: 'Newest first' },
          { value: 'updated:desc', label: 'Recently changed' },
          { value: 'due:asc', label: 'Due soonest' },
          { value: 'priority:desc', label: 'Most urgent' },
          { value: 'rank:asc', label: 'Board order' },
        ]}
        {...field('sort')}
      />
      <div className="form-actions">
        <button type="submit" className="button button-primary">
          Show tasks
        </button>
      </div>
    </form>
  );
}

function TaskTable({ tasks, projects }: { tasks: Task[]; projects: Project[] }) {
  if (tasks.length === 0) return <p role="status">No tasks match.</p>;
  const projectName = (id: string) => projects.find((p) => p.id === id)?.name ?? '';
  return (
    <table className="table task-table">
      <caption className="visually-hidden">Tasks</caption>
      <thead>
        <tr>
          <th scope="col">Task</th>
          <th scope="col">Project</th>
          <th scope="col">Status</th>
          <th scope="col">Assignee</th>
          <th scope="col">Priority</th>
          <th scope="col">Due</th>
        </tr>
      </thead>
      <tbody>
        {tasks.map((task) => (
          <tr key={task.id}>
            <td data-label="Task">
              <Link to={`/tasks/${task.id}`}>
                <span className="card-key">{task.key}</span> {task.title}
              </Link>
              {task.labels.length > 0 ? (
                <span className="labels">
                  {task.labels.map((l) => (
                    <span key={l} className="label">
                      {l}
                    </span>
                  ))}
                </span>
              ) : null}
            </td>
            <td data-label="Project">{projectName(task.projectId)}</td>
            <td data-label="Status">{task.status.name}</td>
            <td data-label="Assignee">{task.assignee?.displayName ?? '—'}</td>
            <td data-label="Priority">
              <span className={`badge badge-${task.priority}`}>{task.priority}</span>
            </td>
            <td data-label="Due">{task.dueDate ? formatDate(task.dueDate) : '—'}</td>
          </tr>
        ))}
      </tbody>
    </table>
  );
}
