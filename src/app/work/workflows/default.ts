/**
 * The workflow every new project starts with. Migration 0003 gave existing projects the same one,
 * in SQL; test/migrate-workflows.test.ts checks that the two agree.
 */
import type { WorkflowChange } from './schema.ts';

export const DEFAULT_WORKFLOW: WorkflowChange = {
  statuses: [
    { name: 'To do', category: 'todo' },
    { name: 'In progress', category: 'in_progress' },
    { name: 'Done', category: 'done' },
  ],
  // Every move, for everybody who may edit tasks.
  transitions: [
    { from: 'To do', to: 'In progress' },
    { from: 'To do', to: 'Done' },
    { from: 'In progress', to: 'To do' },
    { from: 'In progress', to: 'Done' },
    { from: 'Done', to: 'To do' },
    { from: 'Done', to: 'In progress' },
  ],
};
