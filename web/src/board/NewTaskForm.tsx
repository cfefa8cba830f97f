/** Adds a task to the board's first column. */
import { useState, type SubmitEvent } from 'react';
import { fieldMessage } from '../api/problem.ts';
import { createTask } from '../api/tasks.ts';
import { PRIORITIES, type Priority, type Task } from '../api/types.ts';
import { ErrorAlert } from '../components/Alerts.tsx';
import { SelectField, TextField } from '../components/Fields.tsx';
import { useAction } from '../hooks/useAsync.ts';

/** New tasks go to the workflow's first status (the server's default). */
export function NewTaskForm({ projectId, onCreated }: { projectId: string; onCreated: (task: Task) => void }) {
  const [title, setTitle] = useState('');
  const [priority, setPriority] = useState<Priority>('medium');
  const [dueDate, setDueDate] = useState('');
  const action = useAction(async () => {
    const task = await createTask(projectId, { title: title.trim(), priority, dueDate: dueDate === '' ? null : dueDate });
    setTitle('');
    setDueDate('');
    onCreated(task);
  });
  const submit = (event: SubmitEvent<HTMLFormElement>) => {
    event.preventDefault();
    void action.run();
  };
  return (
    <section aria-labelledby="new-task" className="new-task">
      <h2 id="new-task" className="visually-hidden">
        Add a task
      </h2>
      <ErrorAlert error={action.error} />
      <form onSubmit={submit} className="form form-inline">
        <TextField label="Title of a new task" name="title" required maxLength={500} placeholder="What needs doing?" value={title} error={fieldMessage(action.error, '/title')} onChange={(e) => setTitle(e.target.value)} />
        <SelectField
          label="Priority"
          name="priority"
          value={priority}
          options={PRIORITIES.map((p) => ({ value: p, label: p }))}
          onChange={(e) => setPriority(e.target.value as Priority)}
        />
        <TextField label="Due date" name="dueDate" type="date" value={dueDate} error={fieldMessage(action.error, '/dueDate')} onChange={(e) => setDueDate(e.target.value)} />
        <div className="form-actions">
          <button type="submit" className="button button-primary" disabled={action.pending}>
            Add the task
          </button>
        </div>
      </form>
    </section>
  );
}
