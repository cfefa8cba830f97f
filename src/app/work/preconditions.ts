/**
 * Optimistic concurrency with ETags: a task's ETag is its version, and `If-Match` on PATCH or DELETE
 * makes the change happen only if the task is still at one of the versions named.
 */

export function etagOf(version: number): string {
  return `"${version}"`;
}

const STRONG_ETAG = /^"([1-9][0-9]{0,9})"$/;

/** Versions are PostgreSQL `integer`s: a larger number cannot be the version of anything. */
export const MAX_VERSION = 2_147_483_647;

/**
 * The versions an If-Match header accepts, or null when any version will do (no header, or `*`).
 * An empty list means no version can match: weak or foreign ETags never match under the strong
 * comparison If-Match uses (RFC 9110 §13.1.1), and neither does a version too large to exist. The
 * caller still answers 404 for a resource that does not exist: preconditions are only evaluated
 * for a request that would otherwise succeed (RFC 9110 §13.2.1).
 */
export function acceptedVersions(ifMatch: string | undefined): number[] | null {
  if (ifMatch === undefined) return null;
  const tags = ifMatch.split(',').map((t) => t.trim()).filter((t) => t !== '');
  if (tags.length === 1 && tags[0] === '*') return null;
  const versions: number[] = [];
  for (const tag of tags) {
    const m = STRONG_ETAG.exec(tag);
    const version = m?.[1] === undefined ? NaN : Number(m[1]);
    if (version <= MAX_VERSION) versions.push(version);
  }
  return versions;
}
