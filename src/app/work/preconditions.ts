/**
 * Optimistic concurrency with ETags: a task's ETag is its version, and `If-Match` on PATCH or DELETE
 * makes the change happen only if the task is still at one of the versions named.
 */
import { AppError } from '../../errors.ts';

export function etagOf(version: number): string {
  return `"${version}"`;
}

const STRONG_ETAG = /^"([1-9][0-9]{0,9})"$/;

/**
 * The versions an If-Match header accepts, or null when any version will do (no header, or `*`).
 * Weak or foreign ETags can never match under the strong comparison If-Match uses (RFC 9110
 * §13.1.1), so they fail the precondition rather than being ignored.
 */
export function acceptedVersions(ifMatch: string | undefined): number[] | null {
  if (ifMatch === undefined) return null;
  const tags = ifMatch.split(',').map((t) => t.trim()).filter((t) => t !== '');
  if (tags.length === 1 && tags[0] === '*') return null;
  const versions: number[] = [];
  for (const tag of tags) {
    const m = STRONG_ETAG.exec(tag);
    if (m?.[1] !== undefined) versions.push(Number(m[1]));
  }
  if (versions.length === 0) throw new AppError('precondition-failed', 'If-Match names no version of this resource');
  return versions;
}
