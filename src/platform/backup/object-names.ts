/**
 * Object names in a repository: relative, `/`-separated, from a small alphabet, so that no name
 * can climb out of the repository root, name a device, or collide with the temporary files a
 * driver writes (those start with a dot, which no segment of an object name may).
 */
import { BackupError } from './errors.ts';

const SEGMENT = /^[A-Za-z0-9_][A-Za-z0-9._+=@-]*$/;
export const MAX_NAME_LENGTH = 1024;
const MAX_SEGMENT_LENGTH = 200;

/** Throws a BackupError (object-name) unless `name` is a safe object name; returns its segments. */
export function checkObjectName(name: string): string[] {
  const refuse = (why: string): never => {
    throw new BackupError('object-name', `object name ${JSON.stringify(name.slice(0, 100))} is not allowed: ${why}`);
  };
  if (name.length === 0) refuse('it is empty');
  if (name.length > MAX_NAME_LENGTH) refuse(`it is longer than ${MAX_NAME_LENGTH} characters`);
  if (name.startsWith('/')) refuse('it is absolute');
  const segments = name.split('/');
  for (const segment of segments) {
    if (segment === '' ) refuse('it has an empty path segment');
    if (segment === '.' || segment === '..') refuse('it contains . or .. segments');
    if (segment.length > MAX_SEGMENT_LENGTH) refuse(`a segment is longer than ${MAX_SEGMENT_LENGTH} characters`);
    if (!SEGMENT.test(segment)) refuse('segments use letters, digits and . _ + = @ - only, and do not start with . or -');
  }
  return segments;
}

/** Whether `name` is a prefix a listing may take: empty, or a valid name, optionally ending in `/`. */
export function checkListPrefix(prefix: string): string {
  if (prefix === '') return prefix;
  checkObjectName(prefix.endsWith('/') ? prefix.slice(0, -1) : prefix);
  return prefix;
}
