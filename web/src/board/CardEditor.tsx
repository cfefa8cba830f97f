/**
 * A card's editor on the board: its assignee and labels, changed without leaving the board, in a
 * small disclosure that works with the keyboard (Escape closes it) and at phone width. The change
 * is sent with the version the card shows (If-Match): when someone else changed the task meanwhile,
 * the card shows their version, the form keeps the user's choice and says so, and saving again
 * applies it on top.
 */
import { useRef, useState, type KeyboardEvent, type SubmitEvent } from 'react';
import { ApiError, fieldMessage } from '../api/problem.ts';
import { getTask, updateTask, type TaskChanges } from '../api/tasks.ts';
import type { Person, Task } from '../api/types.ts';
import { ErrorAlert } from '../components/Alerts.tsx';
import { SelectField, TextField } from '../components/Fields.tsx';
import { labelsText, parseLabels, sameLabels } from '../components/labels.ts';
import { useAction } from '../hooks/useAsync.ts';

export interface CardEditorProps {
  task: Task;
  /** Who tasks can be assigned to. */
  people: readonly Person[];
  /** The task as saved, or as someone else left it (no announcement then: the form says it). */
  onChanged: (task: Task, announcement: string | null) => void;
}

export function CardEditor({ task, people, onChanged }: CardEditorProps) {
  const [open, setOpen] = useState(false);
  const details = useRef<HTMLDetailsElement>(null);
  const close = () => {
    if (details.current) details.current.open = false;
    details.current?.querySelector('summary')?.focus();
  };
  return (
    <details className="card-edit" ref={details} onToggle={(e) => setOpen(e.currentTarget.open)}>
      <summary>
        Edit<span className="visually-hidden"> the assignee and labels of {task.key}</span>
      </summary>
      {open ? <CardEditForm task={task} people={people} onChanged={onChanged} onClose={close} /> : null}
    </details>
  );
}

/** The form's fields: an assignee id ('' for nobody) and the labels as typed. */
interface Fields {
  assigneeId: string;
  labels: string;
}

function fieldsOf(task: Task): Fields {
  return { assigneeId: task.assignee?.id ?? '', labels: labelsText(task.labels) };
}

/** What the user changed: the fields that differ from those the form started from. */
function changesOf(base: Fields, form: Fields): TaskChanges {
  const changes: TaskChanges = {};
  if (form.assigneeId !== base.assigneeId) changes.assigneeId = form.assigneeId === '' ? null : form.assigneeId;
  const labels = parseLabels(form.labels);
  if (!sameLabels(labels, parseLabels(base.labels))) changes.labels = labels;
  return changes;
}

function CardEditForm({ task, people, onChanged, onClose }: CardEditorProps & { onClose: () => void }) {
  // `base`: the task's fields as the form started from them; only what differs from it is sent.
  const [base, setBase] = useState(() => fieldsOf(task));
  const [form, setForm] = useState(base);
  const [conflict, setConflict] = useState<string | null>(null);
  const save = useAction(async () => {
    setConflict(null);
    const changes = changesOf(base, form);
    if (Object.keys(changes).length === 0) {
      onClose();
      return;
    }
    try {
      onChanged(await updateTask(task, changes), `${task.key} saved.`);
      onClose();
    } catch (err) {
      if (!(err instanceof ApiError && err.code === 'precondition-failed')) throw err;
      const fresh = await getTask(task.id);
      onChanged(fresh, null);
      // Their values where the user changed nothing; the user's own choice where they did.
      const theirs = fieldsOf(fresh);
      setForm({
        assigneeId: changes.assigneeId === undefined ? theirs.assigneeId : form.assigneeId,
        labels: changes.labels === undefined ? theirs.labels : form.labels,
      });
      setBase(theirs);
      setConflict(`Not saved: someone else changed ${task.key} since the board was loaded. The card now shows their version; your choice is still here, and saving again applies it on top.`);
    }
  });
  const submit = (event: SubmitEvent<HTMLFormElement>) => {
    event.preventDefault();
    void save.run();
  };
  // Keys and pointers in the form are the form's, not a start of dragging the card.
  const keys = (event: KeyboardEvent<HTMLFormElement>) => {
    event.stopPropagation();
    if (event.key === 'Escape') {
      event.preventDefault();
      onClose();
    }
  };
  // A user no longer active stays shown as the assignee the task has.
  const assignees = task.assignee && !people.some((p) => p.id === task.assignee?.id) ? [task.assignee, ...people] : people;
  const forKey = <span className="visually-hidden"> of {task.key}</span>;
  return (
    <form className="card-edit-form" onSubmit={submit} onKeyDown={keys} onPointerDown={(e) => e.stopPropagation()}>
      <ErrorAlert error={conflict ?? save.error} />
      <SelectField
        label={<>Assignee{forKey}</>}
        name="assignee"
        value={form.assigneeId}
        error={fieldMessage(save.error, '/assigneeId')}
        options={[{ value: '', label: 'Nobody' }, ...assignees.map((p) => ({ value: p.id, label: p.displayName }))]}
        onChange={(e) => setForm({ ...form, assigneeId: e.target.value })}
      />
      <TextField label={<>Labels{forKey}</>} name="labels" hint="Separated by commas." value={form.labels} error={fieldMessage(save.error, '/labels')} onChange={(e) => setForm({ ...form, labels: e.target.value })} />
      <div className="form-actions">
        <button type="submit" className="button button-primary" disabled={save.pending}>
          Save<span className="visually-hidden"> {task.key}</span>
        </button>
        <button type="button" className="button" onClick={onClose}>
          Cancel
        </button>
      </div>
    </form>
  );
}
