/** The bearer token of the metrics listener, from metrics.tokenFile (docs/operations.md, "Monitoring"). */
import { readFileSync, statSync } from 'node:fs';
import { UserError } from '../../errors.ts';

/** The shortest token accepted: anything shorter can be guessed. */
const MIN_TOKEN_LENGTH = 16;

/**
 * Reads the token: a file only its owner may read (0600 or 0400), one line of at least 16
 * characters. Anything else is refused (exit 2) naming the file, before anything starts.
 */
export function readMetricsToken(path: string): string {
  let mode: number;
  let text: string;
  try {
    const stat = statSync(path);
    if (!stat.isFile()) throw new UserError(`metrics.tokenFile ${path} is not a file`, 2);
    mode = stat.mode & 0o777;
    text = readFileSync(path, 'utf8');
  } catch (err) {
    if (err instanceof UserError) throw err;
    throw new UserError(`metrics.tokenFile ${path} cannot be read: ${(err as Error).message}`, 2);
  }
  if ((mode & 0o077) !== 0) {
    throw new UserError(`metrics.tokenFile ${path} can be read by other users (mode ${mode.toString(8).padStart(4, '0')}); make it readable by its owner only: chmod 600 ${path}`, 2);
  }
  const token = text.replace(/\r?\n$/, '');
  if (token.length < MIN_TOKEN_LENGTH || /\s/.test(token)) {
    throw new UserError(`metrics.tokenFile ${path} must hold one token of at least ${MIN_TOKEN_LENGTH} characters and no spaces (for example from: openssl rand -hex 32)`, 2);
  }
  return token;
}
