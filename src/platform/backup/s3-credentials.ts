/**
 * Credentials of an S3 repository: from a file only its owner can read, or from the standard
 * AWS environment variables; never from the configuration or a command line. Nothing else is
 * consulted (no ~/.aws, no instance metadata), so what a repository signs with is always what
 * its configuration says.
 */
import { readFileSync, statSync } from 'node:fs';
import { BackupError } from './errors.ts';

export interface S3Credentials {
  accessKeyId: string;
  secretAccessKey: string;
  sessionToken?: string;
}

export const ACCESS_KEY_ENV = 'AWS_ACCESS_KEY_ID';
export const SECRET_KEY_ENV = 'AWS_SECRET_ACCESS_KEY';
export const SESSION_TOKEN_ENV = 'AWS_SESSION_TOKEN';

const FILE_KEYS = { aws_access_key_id: 'accessKeyId', aws_secret_access_key: 'secretAccessKey', aws_session_token: 'sessionToken' } as const;

function denied(repository: string, why: string): BackupError {
  return new BackupError('repository-denied', `repository ${repository}: ${why}`);
}

/**
 * Reads a credentials file: `aws_access_key_id = …`, `aws_secret_access_key = …` and optionally
 * `aws_session_token = …`, with `#` or `;` comments; one `[default]` section header may stand
 * above them, so a credentials file of the AWS CLI holding only its default profile works as is.
 * Refused when group or others may read it, as ssh refuses such a key.
 */
export function readCredentialsFile(path: string, repository: string): S3Credentials {
  let text: string;
  try {
    const mode = statSync(path).mode;
    if ((mode & 0o077) !== 0) {
      throw denied(repository, `credentials file ${path} may be read by others (mode ${(mode & 0o777).toString(8)}); chmod 600 it`);
    }
    text = readFileSync(path, 'utf8');
  } catch (err) {
    if (err instanceof BackupError) throw err;
    throw denied(repository, `cannot read credentials file ${path}: ${(err as NodeJS.ErrnoException).code ?? (err as Error).message}`);
  }
  const found: Partial<S3Credentials> = {};
  let sections = 0;
  for (const [i, raw] of text.split('\n').entries()) {
    const line = raw.trim();
    if (line === '' || line.startsWith('#') || line.startsWith(';')) continue;
    if (/^\[[^\]]+\]$/.test(line)) {
      if (++sections > 1 || line !== '[default]') throw denied(repository, `credentials file ${path}: only one [default] section is allowed (line ${i + 1})`);
      continue;
    }
    const match = /^([a-z_]+)\s*=\s*(\S+)$/.exec(line);
    const field = match ? FILE_KEYS[match[1] as keyof typeof FILE_KEYS] : undefined;
    // The line is never echoed: it may hold a secret.
    if (!match || !field) throw denied(repository, `credentials file ${path}: line ${i + 1} is not aws_access_key_id, aws_secret_access_key or aws_session_token = value`);
    if (found[field] !== undefined) throw denied(repository, `credentials file ${path}: ${match[1]} is given twice`);
    found[field] = match[2];
  }
  if (!found.accessKeyId || !found.secretAccessKey) {
    throw denied(repository, `credentials file ${path} needs aws_access_key_id and aws_secret_access_key`);
  }
  return { accessKeyId: found.accessKeyId, secretAccessKey: found.secretAccessKey, ...(found.sessionToken ? { sessionToken: found.sessionToken } : {}) };
}

/** The credentials from AWS_ACCESS_KEY_ID, AWS_SECRET_ACCESS_KEY and AWS_SESSION_TOKEN. */
export function credentialsFromEnv(env: NodeJS.ProcessEnv, repository: string): S3Credentials {
  const accessKeyId = env[ACCESS_KEY_ENV];
  const secretAccessKey = env[SECRET_KEY_ENV];
  const sessionToken = env[SESSION_TOKEN_ENV];
  if (!accessKeyId || !secretAccessKey) {
    throw denied(repository, `no credentials: set credentialsFile in its configuration, or ${ACCESS_KEY_ENV} and ${SECRET_KEY_ENV} in the environment`);
  }
  return { accessKeyId, secretAccessKey, ...(sessionToken ? { sessionToken } : {}) };
}

/** The credentials an S3 repository signs with: its credentialsFile when it has one, else the AWS_* environment (as S3Repository does). */
export function repositoryCredentials(repository: { name: string; credentialsFile?: string | undefined }, env: NodeJS.ProcessEnv = process.env): S3Credentials {
  return repository.credentialsFile ? readCredentialsFile(repository.credentialsFile, repository.name) : credentialsFromEnv(env, repository.name);
}

/**
 * Credentials as a file readCredentialsFile reads back, for a copy another OS user's process signs
 * with. A value with white space could not be read back (or could add lines): refused.
 */
export function credentialsFileText(credentials: S3Credentials, repository: string): string {
  const lines: [string, string | undefined][] = [
    ['aws_access_key_id', credentials.accessKeyId],
    ['aws_secret_access_key', credentials.secretAccessKey],
    ['aws_session_token', credentials.sessionToken],
  ];
  let text = '# Written by TaskFlow from the repository\'s credentials; rewritten whenever WAL archiving is installed.\n[default]\n';
  for (const [key, value] of lines) {
    if (value === undefined) continue;
    if (!/^\S+$/.test(value)) throw denied(repository, `its ${key} contains white space, which a credentials file cannot hold`);
    text += `${key} = ${value}\n`;
  }
  return text;
}
