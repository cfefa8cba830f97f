/** The tasks API contract: bodies, parameters and responses, with their inferred types. */
import { Type, type Static } from 'typebox';
import { IdParams, PROBLEM_RESPONSES, Timestamp, Uuid } from '../../schema.ts';
import { Cursor, Limit, PageOf } from '../pagination.ts';

export const TaskStatus = Type.Union([Type.Literal('todo'), Type.Literal('in_progress'), Type.Literal('done')]);
export const TaskPriority = Type.Union([Type.Literal('low'), Type.Literal('medium'), Type.Literal('high'), Type.Literal('urgent')]);
const Title = Type.String({ minLength: 1, maxLength: 500 });
const Description = Type.String({ maxLength: 100_000 });
/** A calendar date, YYYY-MM-DD; null clears it. */
const DueDate = Type.Union([Type.String({ format: 'date' }), Type.Null()]);

export const Task = Type.Object(
  {
    id: Uuid,
    /** `${project key}-${number}`, e.g. WEB-12. */
    key: Type.String(),
    projectId: Uuid,
    number: Type.Integer({ minimum: 1 }),
    title: Title,
    description: Description,
    status: TaskStatus,
    priority: TaskPriority,
    dueDate: DueDate,
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
    status: Type.Optional(TaskStatus),
    priority: Type.Optional(TaskPriority),
    dueDate: Type.Optional(DueDate),
  },
  { additionalProperties: false },
);
export type CreateTaskInput = Static<typeof CreateTaskBody>;

export const UpdateTaskBody = Type.Object(
  {
    title: Type.Optional(Title),
    description: Type.Optional(Description),
    status: Type.Optional(TaskStatus),
    priority: Type.Optional(TaskPriority),
    dueDate: Type.Optional(DueDate),
  },
  { additionalProperties: false, minProperties: 1 },
);
export type UpdateTaskInput = Static<typeof UpdateTaskBody>;

export const ListTasksQuery = Type.Object(
  { projectId: Type.Optional(Uuid), status: Type.Optional(TaskStatus), cursor: Type.Optional(Cursor), limit: Type.Optional(Limit) },
  { additionalProperties: false },
);
export type TaskFilter = Pick<Static<typeof ListTasksQuery>, 'projectId' | 'status'>;

export const TaskPage = PageOf(Task);

export const createTaskRoute = { params: IdParams, body: CreateTaskBody, response: { 201: Task, ...PROBLEM_RESPONSES } };
export const listTasksRoute = { querystring: ListTasksQuery, response: { 200: TaskPage, ...PROBLEM_RESPONSES } };
export const getTaskRoute = { params: IdParams, response: { 200: Task, ...PROBLEM_RESPONSES } };
export const updateTaskRoute = { params: IdParams, body: UpdateTaskBody, response: { 200: Task, ...PROBLEM_RESPONSES } };
export const deleteTaskRoute = { params: IdParams, response: { 204: Type.Null(), ...PROBLEM_RESPONSES } };
