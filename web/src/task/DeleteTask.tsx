/** Deleting a task, after a confirmation, with the version read (If-Match). */
import { useState } from 'react';
import { deleteTask } from '../api/tasks.ts';
import type { Project, Task } from '../api/types.ts';
import { ErrorAlert } from '../components/Alerts.tsx';
import { useAction } from '../hooks/useAsync.ts';
import { navigate } from '../router.tsx';

export function DeleteTask({ task, project }: { task: Task; project: Project }) {
  const [confirming, setConfirming] = useState(false);
  const action = useAction(async () => {
    await deleteTask(task);
    navigate(`/projects/${project.id}`);
  });
  return (
    <section aria-labelledby="delete" className="section section-danger">
      <h2 id="delete">Delete</h2>
      <ErrorAlert error={action.error} />
      {confirming ? (
        <div className="form-actions">
          <p>Delete {task.key} with its comments and history, for good?</p>
          <button type="button" className="button button-danger" disabled={action.pending} onClick={() => void action.run()}>
            Delete {task.key}
          </button>
          <button type="button" className="button" onClick={() => setConfirming(false)}>
            Keep it
          </button>
        </div>
      ) : (
        <button type="button" className="button button-danger" onClick={() => setConfirming(true)}>
          Delete the task…
        </button>
      )}
    </section>
  );
}
