/**
 * Editing a workflow: statuses (name, category, order; new ones; removed ones with a destination for
 * their tasks) and a grid of the moves between them, each open to everyone who edits tasks, to
 * admins, or to owners. Saved in one request; nothing changes until the server accepts it all.
 */
import { useState } from 'react';
import type { SubmitEvent } from 'react';
import { ApiError } from '../api/problem.ts';
import { CATEGORIES, type StatusCategory } from '../api/types.ts';
import { CATEGORY_NAMES, loadWorkflow, replaceWorkflow, type Workflow } from '../api/workflow.ts';
import { ErrorAlert } from '../components/Alerts.tsx';
import { useAction } from '../hooks/useAsync.ts';
import { changeOf, draftOf, moveKey, newStatus, ruleLabel, withoutStatus, type Draft, type DraftStatus, type MoveRule } from './draft.ts';

const PRESETS: readonly MoveRule[] = ['everyone', 'admins', 'owners'];

/** A status as the editor names it, also before it has a name. */
function label(status: DraftStatus, index: number): string {
  return status.name.trim() || `status ${index + 1}`;
}

/** `onSaved` gets the workflow the server now holds, and what to tell the user. */
export function WorkflowEditor({ workflow, onSaved }: { workflow: Workflow; onSaved: (workflow: Workflow, notice: string) => void }) {
  const [draft, setDraft] = useState<Draft>(() => draftOf(workflow));
  const [latest, setLatest] = useState<Workflow | null>(null);
  const save = useAction(async () => {
    try {
      onSaved(await replaceWorkflow(workflow, changeOf(draft)), 'The workflow is saved; the board shows it now.');
    } catch (err) {
      if (err instanceof ApiError && err.code === 'precondition-failed') setLatest(await loadWorkflow(workflow.projectId).catch(() => null));
      throw err;
    }
  });
  const submit = (event: SubmitEvent<HTMLFormElement>) => {
    event.preventDefault();
    void save.run();
  };
  const update = (key: string, change: Partial<DraftStatus>) => {
    setDraft({ ...draft, statuses: draft.statuses.map((s) => (s.key === key ? { ...s, ...change } : s)) });
  };
  const shift = (index: number, by: -1 | 1) => {
    const statuses = [...draft.statuses];
    const [moved] = statuses.splice(index, 1);
    if (!moved) return;
    statuses.splice(index + by, 0, moved);
    setDraft({ ...draft, statuses });
  };
  const conflict = save.error instanceof ApiError && save.error.code === 'precondition-failed';
  const message = conflict ? 'Not saved: someone else changed this workflow since you opened it. Load their version, then make your changes again.' : save.error;

  return (
    <form onSubmit={submit} className="workflow-editor">
      <section aria-labelledby="statuses" className="section">
        <h2 id="statuses">Statuses</h2>
        <p className="hint">In board order. The category says where a status stands (to do, in progress or done), whatever its name.</p>
        <ol className="status-rows">
          {draft.statuses.map((status, index) => (
            <li key={status.key} className="status-row">
              <div className="field">
                <label htmlFor={`name-${status.key}`}>Name of status {index + 1}</label>
                <input id={`name-${status.key}`} value={status.name} required maxLength={50} onChange={(e) => update(status.key, { name: e.target.value })} />
              </div>
              <div className="field">
                <label htmlFor={`category-${status.key}`}>Category of status {index + 1}</label>
                <select id={`category-${status.key}`} value={status.category} onChange={(e) => update(status.key, { category: e.target.value as StatusCategory })}>
                  {CATEGORIES.map((c) => (
                    <option key={c} value={c}>
                      {CATEGORY_NAMES[c]}
                    </option>
                  ))}
                </select>
              </div>
              <div className="status-row-actions">
                <span className="hint">{status.id === null ? 'new' : `${status.taskCount} ${status.taskCount === 1 ? 'task' : 'tasks'}`}</span>
                <button type="button" className="button button-quiet" aria-label={`Move ${label(status, index)} up`} disabled={index === 0} onClick={() => shift(index, -1)}>
                  Up
                </button>
                <button type="button" className="button button-quiet" aria-label={`Move ${label(status, index)} down`} disabled={index === draft.statuses.length - 1} onClick={() => shift(index, 1)}>
                  Down
                </button>
                <button type="button" className="button button-danger" aria-label={`Remove ${label(status, index)}`} disabled={draft.statuses.length === 1} onClick={() => setDraft(withoutStatus(draft, status.key))}>
                  Remove
                </button>
              </div>
            </li>
          ))}
        </ol>
        <button type="button" className="button" onClick={() => setDraft({ ...draft, statuses: [...draft.statuses, newStatus()] })}>
          Add a status
        </button>
        <Destinations draft={draft} onChange={setDraft} />
      </section>
      <Moves draft={draft} onChange={setDraft} />
      <ErrorAlert error={message}>
        {conflict && latest ? (
          <button type="button" className="button" onClick={() => onSaved(latest, `This is the latest version of the workflow (${latest.version}). Make your changes again if they are still needed.`)}>
            Load the latest version
          </button>
        ) : null}
      </ErrorAlert>
      <div className="form-actions">
        <button type="submit" className="button button-primary" disabled={save.pending}>
          {save.pending ? 'Saving…' : 'Save the workflow'}
        </button>
        <button type="button" className="button" onClick={() => setDraft(draftOf(workflow))}>
          Undo my changes
        </button>
      </div>
    </form>
  );
}

/** Where the tasks of removed statuses go. */
function Destinations({ draft, onChange }: { draft: Draft; onChange: (draft: Draft) => void }) {
  const needing = draft.removed.filter((s) => s.id !== null && s.taskCount > 0);
  if (needing.length === 0) return null;
  return (
    <div className="destinations">
      <h3>Tasks of removed statuses</h3>
      {needing.map((gone) => {
        const id = gone.id ?? '';
        return (
          <div key={id} className="field">
            <label htmlFor={`destination-${id}`}>
              The {gone.taskCount} {gone.taskCount === 1 ? 'task' : 'tasks'} in {gone.name} go to
            </label>
            <select id={`destination-${id}`} value={draft.destinations[id] ?? ''} onChange={(e) => onChange({ ...draft, destinations: { ...draft.destinations, [id]: e.target.value } })}>
              {draft.statuses.map((s) => (
                <option key={s.key} value={s.key}>
                  {s.name || '(unnamed)'}
                </option>
              ))}
            </select>
          </div>
        );
      })}
    </div>
  );
}

/** The grid of moves: a row per status a task leaves, a column per status it enters. */
function Moves({ draft, onChange }: { draft: Draft; onChange: (draft: Draft) => void }) {
  const set = (from: string, to: string, value: string) => {
    const moves = { ...draft.moves };
    const rule = [...PRESETS, draft.moves[moveKey(from, to)]].find((r) => r === value);
    if (rule === undefined) Reflect.deleteProperty(moves, moveKey(from, to));
    else moves[moveKey(from, to)] = rule;
    onChange({ ...draft, moves });
  };
  const allowAll = () => {
    const moves: Record<string, MoveRule> = { ...draft.moves };
    for (const from of draft.statuses) for (const to of draft.statuses) if (from.key !== to.key) moves[moveKey(from.key, to.key)] ??= 'everyone';
    onChange({ ...draft, moves });
  };
  const name = label;
  return (
    <section aria-labelledby="moves" className="section">
      <h2 id="moves">Moves</h2>
      <p className="hint">Who may move a task from the status of the row to the status of the column. A dash: nobody.</p>
      <div className="table-scroll">
        <table className="table moves-table">
          <caption className="visually-hidden">Allowed moves between statuses</caption>
          <thead>
            <tr>
              <th scope="col">From \ to</th>
              {draft.statuses.map((to, j) => (
                <th key={to.key} scope="col">
                  {name(to, j)}
                </th>
              ))}
            </tr>
          </thead>
          <tbody>
            {draft.statuses.map((from, i) => (
              <tr key={from.key}>
                <th scope="row">{name(from, i)}</th>
                {draft.statuses.map((to, j) => {
                  if (from.key === to.key) return <td key={to.key} className="moves-self" aria-label="the same status" />;
                  const current = draft.moves[moveKey(from.key, to.key)];
                  const options = current && !PRESETS.includes(current) ? [...PRESETS, current] : PRESETS;
                  return (
                    <td key={to.key}>
                      <label htmlFor={`move-${from.key}-${to.key}`} className="visually-hidden">
                        From {name(from, i)} to {name(to, j)}
                      </label>
                      <select id={`move-${from.key}-${to.key}`} value={current ?? ''} onChange={(e) => set(from.key, to.key, e.target.value)}>
                        <option value="">—</option>
                        {options.map((rule) => (
                          <option key={rule} value={rule}>
                            {ruleLabel(rule)}
                          </option>
                        ))}
                      </select>
                    </td>
                  );
                })}
              </tr>
            ))}
          </tbody>
        </table>
      </div>
      <button type="button" className="button" onClick={allowAll}>
        Allow every move for everyone
      </button>
    </section>
  );
}
