/** Shapes shared by the work routes: status categories, status and person references. */
import { Type, type Static } from 'typebox';
import { Uuid } from '../schema.ts';

/** Where a status stands on the board: every status is one of these, whatever its name. */
export const CATEGORIES = ['todo', 'in_progress', 'done'] as const;
export const Category = Type.Union([Type.Literal('todo'), Type.Literal('in_progress'), Type.Literal('done')]);
export type CategoryValue = (typeof CATEGORIES)[number];

export const StatusName = Type.String({ minLength: 1, maxLength: 50, pattern: '^\\S(.*\\S)?$' });

/** A task's status as shown with the task. */
export const StatusRef = Type.Object({ id: Uuid, name: StatusName, category: Category }, { additionalProperties: false });
export type StatusRefView = Static<typeof StatusRef>;

/** A user as shown to everybody who reads work: no e-mail address, no role. */
export const Person = Type.Object({ id: Uuid, displayName: Type.String() }, { additionalProperties: false });
export type PersonView = Static<typeof Person>;

/** The `If-Match` header, declared so the API reference shows it; parsed by preconditions.ts. */
export const IfMatchHeaders = Type.Object({ 'if-match': Type.Optional(Type.String({ description: 'ETag(s) the resource must still have, e.g. "3"' })) });
