/** A workflow as text, for those who may not change it. */
import type { Workflow } from '../api/workflow.ts';
import { CATEGORY_NAMES } from '../api/workflow.ts';
import { ruleLabel, draftOf, moveKey } from './draft.ts';

export function WorkflowSummary({ workflow }: { workflow: Workflow }) {
  const draft = draftOf(workflow);
  return (
    <section aria-labelledby="statuses" className="section">
      <h2 id="statuses">Statuses and moves</h2>
      <p>Admins and owners change the workflow.</p>
      <ol className="workflow-summary">
        {workflow.statuses.map((from) => {
          const moves = workflow.statuses.filter((to) => draft.moves[moveKey(from.id, to.id)] !== undefined);
          return (
            <li key={from.id}>
              <strong>{from.name}</strong> ({CATEGORY_NAMES[from.category]}, {from.taskCount} {from.taskCount === 1 ? 'task' : 'tasks'}):{' '}
              {moves.length === 0
                ? 'no moves out'
                : moves.map((to, i) => {
                    const rule = draft.moves[moveKey(from.id, to.id)];
                    return (
                      <span key={to.id}>
                        {i > 0 ? '; ' : ''}to {to.name}
                        {rule && rule !== 'everyone' ? ` (${ruleLabel(rule)})` : ''}
                      </span>
                    );
                  })}
            </li>
          );
        })}
      </ol>
    </section>
  );
}
