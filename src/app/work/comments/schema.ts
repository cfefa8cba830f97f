/** The comments API contract: a task's discussion, in Markdown. */
import { Type, type Static } from 'typebox';
import { IdParams, PROBLEM_RESPONSES, Timestamp, Uuid } from '../../schema.ts';
import { Actor } from '../actor.ts';
import { PageOf } from '../pagination.ts';
import { PageQuery } from '../tasks/schema.ts';

/** Markdown source; returned as written, for the client to render. */
const Body = Type.String({ minLength: 1, maxLength: 20_000, pattern: '\\S' });

export const Comment = Type.Object(
  {
    id: Uuid,
    taskId: Uuid,
    body: Body,
    author: Actor,
    createdAt: Timestamp,
    updatedAt: Timestamp,
    /** Whether the body was changed after it was written. */
    edited: Type.Boolean(),
  },
  { additionalProperties: false },
);
export type CommentView = Static<typeof Comment>;

export const CommentBody = Type.Object({ body: Body }, { additionalProperties: false });

const CommentParams = Type.Object({ id: Uuid, commentId: Uuid }, { additionalProperties: false });

export const listCommentsRoute = { summary: "A task's comments, oldest first", params: IdParams, querystring: PageQuery, response: { 200: PageOf(Comment), ...PROBLEM_RESPONSES } };
export const addCommentRoute = { summary: 'Comment on a task', params: IdParams, body: CommentBody, response: { 201: Comment, ...PROBLEM_RESPONSES } };
export const editCommentRoute = { summary: 'Change one of your comments', params: CommentParams, body: CommentBody, response: { 200: Comment, ...PROBLEM_RESPONSES } };
export const deleteCommentRoute = { summary: 'Delete a comment (yours, or any as an admin)', params: CommentParams, response: { 204: Type.Null(), ...PROBLEM_RESPONSES } };
