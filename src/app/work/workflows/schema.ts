/** The workflow API contract: a project's statuses in board order and the moves allowed between them. */
import { Type, type Static } from 'typebox';
import { IdParams, PROBLEM_RESPONSES, Uuid } from '../../schema.ts';
import { Category, IfMatchHeaders, StatusName } from '../schema.ts';

/** Roles a transition can be limited to; viewers never edit, and an API token counts as a member. */
export const TransitionRole = Type.Union([Type.Literal('member'), Type.Literal('admin'), Type.Literal('owner')]);
export type TransitionRoleValue = Static<typeof TransitionRole>;
const TransitionRoles = Type.Union([Type.Array(TransitionRole, { minItems: 1, maxItems: 3, uniqueItems: true }), Type.Null()]);

export const MAX_STATUSES = 30;

export const WorkflowStatus = Type.Object(
  {
    id: Uuid,
    name: StatusName,
    category: Category,
    /** 0, 1, 2…: the status's column on the board. */
    position: Type.Integer({ minimum: 0 }),
    /** How many tasks are in it now. */
    taskCount: Type.Integer({ minimum: 0 }),
  },
  { additionalProperties: false },
);

export const WorkflowTransition = Type.Object(
  {
    fromStatusId: Uuid,
    toStatusId: Uuid,
    /** null: everybody who may edit tasks; otherwise only these roles. */
    roles: TransitionRoles,
  },
  { additionalProperties: false },
);

export const Workflow = Type.Object(
  {
    projectId: Uuid,
    /** Goes up by one on every change; the ETag. */
    version: Type.Integer({ minimum: 1 }),
    statuses: Type.Array(WorkflowStatus),
    transitions: Type.Array(WorkflowTransition),
  },
  { additionalProperties: false },
);
export type WorkflowView = Static<typeof Workflow>;

/**
 * A whole new workflow. Statuses are listed in board order; a status with `id` is that existing
 * status (renamed, recategorised or moved), one without is new, and an existing status left out is
 * removed. Transitions and moves name the new workflow's statuses by name, since new ones have no
 * id yet.
 */
export const WorkflowBody = Type.Object(
  {
    statuses: Type.Array(
      Type.Object({ id: Type.Optional(Uuid), name: StatusName, category: Category }, { additionalProperties: false }),
      { minItems: 1, maxItems: MAX_STATUSES },
    ),
    transitions: Type.Array(
      Type.Object({ from: StatusName, to: StatusName, roles: Type.Optional(TransitionRoles) }, { additionalProperties: false }),
      { maxItems: MAX_STATUSES * (MAX_STATUSES - 1) },
    ),
    /** Where the tasks of each removed status go; needed for every removed status that has tasks. */
    moves: Type.Optional(
      Type.Array(Type.Object({ fromStatusId: Uuid, to: StatusName }, { additionalProperties: false }), { maxItems: MAX_STATUSES }),
    ),
  },
  { additionalProperties: false },
);
export type WorkflowChange = Static<typeof WorkflowBody>;

export const getWorkflowRoute = { summary: "A project's workflow", params: IdParams, response: { 200: Workflow, ...PROBLEM_RESPONSES } };
export const replaceWorkflowRoute = {
  summary: "Replace a project's workflow, moving the tasks of removed statuses",
  params: IdParams,
  headers: IfMatchHeaders,
  body: WorkflowBody,
  response: { 200: Workflow, ...PROBLEM_RESPONSES },
};
