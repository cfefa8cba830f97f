/**
 * The form that changes a task. Only the fields that differ are sent, with the version read
 * (If-Match): a change someone else made meanwhile is never overwritten; the form says so, keeps
 * the edits, and offers the latest version.
 */
import { useState } from 'react';
import type { SubmitEvent } from 'react';
import { listPeople } from '../api/people.ts';
import { ApiError, fieldMessage } from '../api/problem.ts';
import { getTask, updateTask, type TaskChanges } from '../api/tasks.ts';
import { PRIORITIES, type Priority, type Task } from '../api/types.ts';
import { targetsFrom, type Workflow } from '../api/workflow.ts';
import { ErrorAlert } from '../components/Alerts.tsx';
import { SelectField, TextAreaField, TextField } from '../components/Fields.tsx';
import { labelsText, parseLabels, sameLabels } from '../components/labels.ts';
import { useAction, useLoad } from '../hooks/useAsync.ts';
import { useUser } from '../session.tsx';

interface Form {
  title: string;
  description: string;
  statusId: string;
  priority: Priority;
  dueDate: string;
  assigneeId: string;
  labels: string;
}

/** Only the fields that differ from the task as read. */
function changesOf(task: Task, form: Form): TaskChanges {
  const changes: TaskChanges = {};
  if (form.title.trim() !== task.title) changes.title = form.title.trim();
  if (form.description !== task.description) changes.description = form.description;
  if (form.statusId !== task.status.id) changes.statusId = form.statusId;
  if (form.priority !== task.priority) changes.priority = form.priority;
  const due = form.dueDate === '' ? null : form.dueDate;
  if (due !== task.dueDate) changes.dueDate = due;
  const assignee = form.assigneeId === '' ? null : form.assigneeId;
  if (assignee !== (task.assignee?.id ?? null)) changes.assigneeId = assignee;
  const labels = parseLabels(form.labels);
  if (!sameLabels(labels, task.labels)) changes.labels = labels;
  return changes;
}

export interface EditTaskProps {
  task: Task;
  workflow: Workflow;
  onCancel: () => void;
  onSaved: (task: Task) => void;
  onReload: (task: Task) => void;
}

export function EditTask({ task, workflow, onCancel, onSaved, onReload }: EditTaskProps) {
  const user = useUser();
  const people = useLoad(listPeople, []);
  const [form, setForm] = useState<Form>({
    title: task.title,
    description: task.description,
    statusId: task.status.id,
    priority: task.priority,
    dueDate: task.dueDate ?? '',
    assigneeId: task.assignee?.id ?? '',
    labels: labelsText(task.labels),
  });
  const [latest, setLatest] = useState<Task | null>(null);
  const statuses = [{ id: task.status.id, name: task.status.name }, ...targetsFrom(workflow, task.status.id, user.role)];
  const assignees = people.status === 'ready' ? people.data : task.assignee ? [task.assignee] : [];
  const save = useAction(async () => {
    const changes = changesOf(task, form);
    if (Object.keys(changes).length === 0) {
      onCancel();
      return;
    }
    try {
      onSaved(await updateTask(task, changes));
    } catch (err) {
      if (err instanceof ApiError && err.code === 'precondition-failed') setLatest(await getTask(task.id).catch(() => null));
      throw err;
    }
  });
  const submit = (event: SubmitEvent<HTMLFormElement>) => {
    event.preventDefault();
    setLatest(null);
    void save.run();
  };
  const conflict = save.error instanceof ApiError && save.error.code === 'precondition-failed';
  const message = conflict
    ? `Not saved: someone else changed this task since you opened it${latest ? ` (it is now at version ${latest.version})` : ''}. Your edits are still in the form; load the latest version to see their change, then make yours again.`
    : save.error;
  const set = <K extends keyof Form>(name: K, value: Form[K]) => {
    setForm({ ...form, [name]: value });
  };
  return (
    <section aria-labelledby="edit" className="section">
      <h2 id="edit">Edit the task</h2>
      <ErrorAlert error={message}>
        {conflict && latest ? (
          <button type="button" className="button" onClick={() => onReload(latest)}>
            Load the latest version
          </button>
        ) : null}
      </ErrorAlert>
      <form onSubmit={submit} className="form">
        <TextField label="Title" name="title" required maxLength={500} value={form.title} error={fieldMessage(save.error, '/title')} onChange={(e) => set('title', e.target.value)} />
        <TextAreaField
          label="Description"
          name="description"
          rows={8}
          hint="Markdown: **bold**, _italic_, lists, `code` and links."
          value={form.description}
          error={fieldMessage(save.error, '/description')}
          onChange={(e) => set('description', e.target.value)}
        />
        <SelectField
          label="Status"
          name="status"
          hint={statuses.length === 1 ? 'The workflow allows you no move from this status.' : 'Only the moves the workflow allows you.'}
          value={form.statusId}
          options={statuses.map((s) => ({ value: s.id, label: s.name }))}
          onChange={(e) => set('statusId', e.target.value)}
        />
        <SelectField
          label="Assignee"
          name="assignee"
          value={form.assigneeId}
          error={fieldMessage(save.error, '/assigneeId')}
          options={[{ value: '', label: 'Nobody' }, ...assignees.map((p) => ({ value: p.id, label: p.displayName }))]}
          onChange={(e) => set('assigneeId', e.target.value)}
        />
        <SelectField label="Priority" name="priority" value={form.priority} options={PRIORITIES.map((p) => ({ value: p, label: p }))} onChange={(e) => set('priority', e.target.value as Priority)} />
        <TextField label="Due date" name="dueDate" type="date" value={form.dueDate} error={fieldMessage(save.error, '/dueDate')} onChange={(e) => set('dueDate', e.target.value)} />
        <TextField
          label="Labels"
          name="labels"
          hint="Separated by commas; at most 20, each up to 40 characters."
          value={form.labels}
          error={fieldMessage(save.error, '/labels')}
          onChange={(e) => set('labels', e.target.value)}
        />
        <div className="form-actions">
          <button type="submit" className="button button-primary" disabled={save.pending}>
            {save.pending ? 'Saving…' : 'Save'}
          </button>
          <button type="button" className="button" onClick={onCancel}>
            Cancel
          </button>
        </div>
      </form>
    </section>
  );
}
