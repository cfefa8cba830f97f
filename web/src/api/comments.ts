/** /api/tasks/{id}/comments: a task's discussion, in Markdown. */
import { get, query, request } from './http.ts';
import type { Comment, Page } from './types.ts';

const id = encodeURIComponent;

/** A page of comments, oldest first. */
export function listComments(taskId: string, cursor?: string | null): Promise<Page<Comment>> {
  return get<Page<Comment>>(`/api/tasks/${id(taskId)}/comments${query({ limit: 100, cursor })}`);
}

export async function addComment(taskId: string, body: string): Promise<Comment> {
  return (await request<Comment>('POST', `/api/tasks/${id(taskId)}/comments`, { body: { body } })).data;
}

/** Only its author changes a comment. */
export async function editComment(comment: Pick<Comment, 'id' | 'taskId'>, body: string): Promise<Comment> {
  return (await request<Comment>('PATCH', `/api/tasks/${id(comment.taskId)}/comments/${id(comment.id)}`, { body: { body } })).data;
}

/** Its author deletes a comment, and so does an admin. */
export async function deleteComment(comment: Pick<Comment, 'id' | 'taskId'>): Promise<void> {
  await request('DELETE', `/api/tasks/${id(comment.taskId)}/comments/${id(comment.id)}`);
}
