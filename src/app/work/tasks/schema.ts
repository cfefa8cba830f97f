/** The tasks API contract: bodies, parameters and responses, with their inferred types. */
import { Type, type Static } from 'typebox';
import { IdParams, PROBLEM_RESPONSES, Timestamp, Uuid } from '../../schema.ts';
import { Actor } from '../actor.ts';
import { Cursor, Limit, PageOf } from '../pagination.ts';
import { Category, IfMatchHeaders, Person, StatusRef } from '../schema.ts';

export const TaskPriority = Type.Union([Type.Literal('low'), Type.Literal('medium'), Type.Literal('high'), Type.Literal('urgent')]);
export type TaskPriorityValue = Static<typeof TaskPriority>;
const Title = Type.String({ minLength: 1, maxLength: 500 });
/** Markdown source; returned as written, for the client to render (the web app: react-markdown). */
export const Description = Type.String({ maxLength: 100_000 });
/** A calendar date, YYYY-MM-DD; null clears it. */
const DueDate = Type.Union([Type.String({ format: 'date' }), Type.Null()]);
export const Label = Type.String({ minLength: 1, maxLength: 40, pattern: '^\\S(.*\\S)?$' });
const Labels = Type.Array(Label, { maxItems: 20, uniqueItems: true });
const AssigneeId = Type.Union([Uuid, Type.Null()]);

export const Task = Type.Object(
  {
    id: Uuid,
    /** `${project key}-${number}`, e.g. WEB-12. */
    key: Type.String(),
    projectId: Uuid,
    number: Type.Integer({ minimum: 1 }),
    title: Title,
    description: Description,
    status: StatusRef,
    priority: TaskPriority,
    dueDate: DueDate,
    labels: Labels,
    assignee: Type.Union([Person, Type.Null()]),
    reporter: Actor,
    /** Goes up by one on every change; the ETag. */
    version: Type.Integer({ minimum: 1 }),
    createdAt: Timestamp,
    updatedAt: Timestamp,
  },
  { additionalProperties: false },
);
export type TaskView = Static<typeof Task>;

export const CreateTaskBody = Type.Object(
  {
    title: Title,
    description: Type.Optional(Description),
    /** Any status of the project; by default its first. */
    statusId: Type.Optional(Uuid),
    priority: Type.Optional(TaskPriority),
    dueDate: Type.Optional(DueDate),
    assigneeId: Type.Optional(AssigneeId),
    labels: Type.Optional(Labels),
  },
  { additionalProperties: false },
);
export type CreateTaskInput = Static<typeof CreateTaskBody>;

export const UpdateTaskBody = Type.Object(
  {
    title: Type.Optional(Title),
    description: Type.Optional(Description),
    /** A move: only along a transition of the workflow that the caller's role may use. */
    statusId: Type.Optional(Uuid),
    priority: Type.Optional(TaskPriority),
    dueDate: Type.Optional(DueDate),
    assigneeId: Type.Optional(AssigneeId),
    labels: Type.Optional(Labels),
  },
  { additionalProperties: false, minProperties: 1 },
);
export type UpdateTaskInput = Static<typeof UpdateTaskBody>;

export const MoveTaskBody = Type.Object(
  {
    /** A status of the task's project; by default the one it is in (a move within its column). */
    toStatusId: Type.Optional(Uuid),
    /** Place it just above this task of the column it goes to. */
    beforeTaskId: Type.Optional(Uuid),
    /** Place it just below this task of the column it goes to. */
    afterTaskId: Type.Optional(Uuid),
  },
  { additionalProperties: false, minProperties: 1 },
);
export type MoveTaskInput = Static<typeof MoveTaskBody>;

/** created, updated, due, priority; rank: board order (column, then place in it); relevance: to `q`. */
export const TaskSort = Type.Union([
  Type.Literal('created'),
  Type.Literal('updated'),
  Type.Literal('due'),
  Type.Literal('priority'),
  Type.Literal('rank'),
  Type.Literal('relevance'),
]);
export const SortOrder = Type.Union([Type.Literal('asc'), Type.Literal('desc')]);

export const ListTasksQuery = Type.Object(
  {
    projectId: Type.Optional(Uuid),
    /** A status id. */
    status: Type.Optional(Uuid),
    category: Type.Optional(Category),
    /** A user id, or `none` for unassigned tasks. */
    assignee: Type.Optional(Type.Union([Uuid, Type.Literal('none')])),
    label: Type.Optional(Label),
    priority: Type.Optional(TaskPriority),
    /** Due strictly before this date. */
    dueBefore: Type.Optional(Type.String({ format: 'date' })),
    /** Due strictly after this date. */
    dueAfter: Type.Optional(Type.String({ format: 'date' })),
    /** Full-text search of title and description: words, "a phrase", -excluded, or. */
    q: Type.Optional(Type.String({ minLength: 1, maxLength: 200 })),
    sort: Type.Optional(TaskSort),
    order: Type.Optional(SortOrder),
    cursor: Type.Optional(Cursor),
    limit: Type.Optional(Limit),
  },
  { additionalProperties: false },
);
type ListQuery = Static<typeof ListTasksQuery>;
export type TaskFilter = Partial<Pick<ListQuery, 'projectId' | 'status' | 'category' | 'assignee' | 'label' | 'priority' | 'dueBefore' | 'dueAfter' | 'q'>>;

export const TaskPage = PageOf(Task);

export const TaskEvent = Type.Object(
  {
    id: Uuid,
    /** created, changed (one field), commented, comment-edited, comment-deleted. */
    kind: Type.Union([Type.Literal('created'), Type.Literal('changed'), Type.Literal('commented'), Type.Literal('comment-edited'), Type.Literal('comment-deleted')]),
    /** For `changed`: title, description, status, priority, dueDate, assignee or labels. */
    field: Type.Union([Type.String(), Type.Null()]),
    /** The value before (null when there was none). */
    before: Type.Unknown(),
    /** The value after (null when there is none). */
    after: Type.Unknown(),
    actor: Actor,
    at: Timestamp,
  },
  { additionalProperties: false },
);
export type TaskEventView = Static<typeof TaskEvent>;

export const LabelsOfProject = Type.Object(
  { items: Type.Array(Type.Object({ name: Label, count: Type.Integer({ minimum: 1 }) }, { additionalProperties: false })) },
  { additionalProperties: false },
);

const PageQuery = Type.Object({ cursor: Type.Optional(Cursor), limit: Type.Optional(Limit) }, { additionalProperties: false });

export const createTaskRoute = { summary: 'Create a task in a project', params: IdParams, body: CreateTaskBody, response: { 201: Task, ...PROBLEM_RESPONSES } };
export const listTasksRoute = { summary: 'List, filter, search and sort tasks', querystring: ListTasksQuery, response: { 200: TaskPage, ...PROBLEM_RESPONSES } };
export const getTaskRoute = { summary: 'One task', params: IdParams, response: { 200: Task, ...PROBLEM_RESPONSES } };
export const updateTaskRoute = { summary: 'Change a task', params: IdParams, headers: IfMatchHeaders, body: UpdateTaskBody, response: { 200: Task, ...PROBLEM_RESPONSES } };
export const moveTaskRoute = { summary: 'Move a task on the board: to another status, to a place in its column', params: IdParams, headers: IfMatchHeaders, body: MoveTaskBody, response: { 200: Task, ...PROBLEM_RESPONSES } };
export const deleteTaskRoute = { summary: 'Delete a task', params: IdParams, headers: IfMatchHeaders, response: { 204: Type.Null(), ...PROBLEM_RESPONSES } };
export const taskHistoryRoute = { summary: "A task's history, oldest first", params: IdParams, querystring: PageQuery, response: { 200: PageOf(TaskEvent), ...PROBLEM_RESPONSES } };
export const projectLabelsRoute = { summary: "The labels used in a project's tasks", params: IdParams, response: { 200: LabelsOfProject, ...PROBLEM_RESPONSES } };
export { PageQuery };
