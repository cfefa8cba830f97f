import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { AppError } from '../../../errors.ts';
import { DEFAULT_WORKFLOW } from './default.ts';
import { planWorkflow, type CurrentStatus } from './plan.ts';

const TODO = '00000000-0000-4000-8000-000000000001';
const DOING = '00000000-0000-4000-8000-000000000002';
const DONE = '00000000-0000-4000-8000-000000000003';
const ELSEWHERE = '00000000-0000-4000-8000-000000000009';

const CURRENT: CurrentStatus[] = [
  { id: TODO, name: 'To do', category: 'todo', taskCount: 2 },
  { id: DOING, name: 'In progress', category: 'in_progress', taskCount: 0 },
  { id: DONE, name: 'Done', category: 'done', taskCount: 5 },
];

function problem(fn: () => unknown): AppError {
  try {
    fn();
  } catch (err) {
    if (err instanceof AppError) return err;
    throw err;
  }
  assert.fail('expected a problem');
}

describe('planWorkflow', () => {
  test('the default workflow of a new project: three statuses, every move', () => {
    const plan = planWorkflow([], DEFAULT_WORKFLOW);
    assert.deepEqual(plan.statuses.map((s) => [s.id, s.name, s.category, s.position]), [
      [null, 'To do', 'todo', 0],
      [null, 'In progress', 'in_progress', 1],
      [null, 'Done', 'done', 2],
    ]);
    assert.equal(plan.transitions.length, 6);
    assert.deepEqual(plan.removed, []);
  });

  test('keeps, renames, adds and removes; moves tasks only where asked', () => {
    const plan = planWorkflow(CURRENT, {
      statuses: [
        { id: TODO, name: 'Backlog', category: 'todo' },
        { name: 'Review', category: 'in_progress' },
        { id: DONE, name: 'Done', category: 'done' },
      ],
      transitions: [{ from: 'backlog', to: 'REVIEW', roles: null }, { from: 'Review', to: 'Done', roles: ['admin', 'owner'] }],
    });
    assert.deepEqual(plan.statuses.map((s) => [s.id, s.name, s.position]), [[TODO, 'Backlog', 0], [null, 'Review', 1], [DONE, 'Done', 2]]);
    assert.deepEqual(plan.removed, [{ id: DOING, name: 'In progress', category: 'in_progress', taskCount: 0, moveTo: null }]);
    assert.deepEqual(plan.transitions, [{ from: 'Backlog', to: 'Review', roles: null }, { from: 'Review', to: 'Done', roles: ['admin', 'owner'] }], 'names as the statuses spell them');
  });

  test('a removed status with tasks needs a move: 409 status-has-tasks naming it', () => {
    const err = problem(() => planWorkflow(CURRENT, { statuses: [{ id: TODO, name: 'To do', category: 'todo' }, { id: DOING, name: 'In progress', category: 'in_progress' }], transitions: [] }));
    assert.equal(err.code, 'status-has-tasks');
    assert.deepEqual(err.extra.statuses, [{ id: DONE, name: 'Done', taskCount: 5 }]);
    const plan = planWorkflow(CURRENT, {
      statuses: [{ id: TODO, name: 'To do', category: 'todo' }, { id: DOING, name: 'In progress', category: 'in_progress' }],
      transitions: [],
      moves: [{ fromStatusId: DONE, to: 'in progress' }],
    });
    assert.deepEqual(plan.removed.map((r) => [r.id, r.moveTo]), [[DONE, 'In progress']]);
  });

  test('every inconsistency is one field error of one 422 invalid-workflow', () => {
    const err = problem(() =>
      planWorkflow(CURRENT, {
        statuses: [
          { id: TODO, name: 'Open', category: 'todo' },
          { id: TODO, name: 'Again', category: 'todo' },
          { id: ELSEWHERE, name: 'Stolen', category: 'todo' },
          { name: 'OPEN', category: 'done' },
        ],
        transitions: [
          { from: 'Open', to: 'Nowhere' },
          { from: 'Again', to: 'again' },
          { from: 'Open', to: 'Again' },
          { from: 'open', to: 'again' },
        ],
        moves: [{ fromStatusId: TODO, to: 'Open' }, { fromStatusId: ELSEWHERE, to: 'Open' }, { fromStatusId: DONE, to: 'Gone' }],
      }),
    );
    assert.equal(err.code, 'invalid-workflow');
    assert.deepEqual((err.extra.errors as { pointer: string; message: string }[]).map((e) => `${e.pointer} ${e.message}`), [
      '/statuses/1/id is listed twice',
      "/statuses/2/id is not one of this project's statuses",
      "/statuses/3/name another status is named 'Open'",
      "/transitions/0/to names no status of the workflow: 'Nowhere'",
      '/transitions/1 goes from a status to itself',
      "/transitions/3 is listed twice: 'Open' to 'Again'",
      '/moves/0/fromStatusId is a status that stays; only the tasks of removed statuses are moved',
      "/moves/1/fromStatusId is not one of this project's statuses",
      "/moves/2/to names no status of the workflow: 'Gone'",
    ]);
    assert.equal(err.detail, 'body/statuses/1/id is listed twice');
  });
});
