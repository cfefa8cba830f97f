/**
 * Password policy and hashing: argon2id (OWASP minimum or above) through @node-rs/argon2's prebuilt
 * N-API binding, a length rule instead of composition rules (NIST SP 800-63B), and a blocklist of
 * common passwords (zxcvbn-ts's list of about 49,000, with their simple variations).
 */
import { hash, verify } from '@node-rs/argon2';
import { dictionary } from '@zxcvbn-ts/language-common';

export const PASSWORD_MIN_LENGTH = 12;
/** Long passphrases are welcome; the cap only keeps hashing cost bounded. */
export const PASSWORD_MAX_LENGTH = 1024;

/** argon2id cost. The OWASP minimum is m=19 MiB, t=2, p=1; we default a little above it. */
export interface Argon2Params {
  memoryKiB: number;
  iterations: number;
  parallelism: number;
}

export const DEFAULT_ARGON2: Argon2Params = { memoryKiB: 19_456, iterations: 2, parallelism: 1 };
export const OWASP_MINIMUM: Argon2Params = { memoryKiB: 19_456, iterations: 2, parallelism: 1 };

const COMMON = new Set(dictionary['passwords-common'].map((p) => p.toLowerCase()));

export type PasswordProblem = 'too-short' | 'too-long' | 'common' | 'contains-personal-data' | 'repetitive';

const PROBLEM_TEXT: Record<PasswordProblem, string> = {
  'too-short': `the password must have at least ${PASSWORD_MIN_LENGTH} characters`,
  'too-long': `the password must have at most ${PASSWORD_MAX_LENGTH} characters`,
  common: 'the password is too common; a few unrelated words make a strong one',
  'contains-personal-data': 'the password must not contain your e-mail address or the organisation name',
  repetitive: 'the password is too repetitive',
};

export function describePasswordProblem(problem: PasswordProblem): string {
  return PROBLEM_TEXT[problem];
}

/** Candidate base words of a password: itself, without surrounding digits and symbols, halves of a doubled word. */
function variations(lower: string): string[] {
  const out = [lower];
  const stripped = lower.replace(/^[\d\W_]+|[\d\W_]+$/gu, '');
  if (stripped.length >= 4) out.push(stripped);
  for (const word of [lower, stripped]) {
    const half = word.length / 2;
    if (Number.isInteger(half) && half >= 3 && word.slice(0, half) === word.slice(half)) out.push(word.slice(0, half));
  }
  return out;
}

/**
 * Checks a new password against the policy; returns the first problem or null. `context` holds
 * words the password must not contain (the user's e-mail local part, the tenant's slug and name).
 */
export function checkPasswordPolicy(password: string, context: string[] = []): PasswordProblem | null {
  // Length in code points, as NIST SP 800-63B counts it.
  let length = 0;
  for (const _ of password) length++;
  if (length < PASSWORD_MIN_LENGTH) return 'too-short';
  if (length > PASSWORD_MAX_LENGTH) return 'too-long';
  const lower = password.normalize('NFKC').toLowerCase();
  if (new Set(lower).size <= 3) return 'repetitive';
  if (variations(lower).some((v) => COMMON.has(v))) return 'common';
  for (const word of context) {
    const w = word.toLowerCase();
    if (w.length >= 4 && lower.includes(w)) return 'contains-personal-data';
  }
  return null;
}

/** Hashes a password with argon2id; the PHC string carries the parameters and salt. */
export function hashPassword(password: string, params: Argon2Params = DEFAULT_ARGON2): Promise<string> {
  // The binding's default algorithm is argon2id (its Algorithm is a const enum, which erasable
  // TypeScript cannot import); passwords.test.ts checks the hashes say so.
  return hash(password.normalize('NFKC'), {
    memoryCost: params.memoryKiB,
    timeCost: params.iterations,
    parallelism: params.parallelism,
  });
}

/** Whether `password` matches `phc`; a damaged hash is a mismatch, never an exception. */
export async function verifyPassword(phc: string, password: string): Promise<boolean> {
  try {
    return await verify(phc, password.normalize('NFKC'));
  } catch {
    return false;
  }
}

const PHC = /^\$argon2id\$v=19\$m=(\d+),t=(\d+),p=(\d+)\$/;

/** Whether a stored hash should be replaced at the next successful login (other algorithm or weaker parameters). */
export function needsRehash(phc: string, params: Argon2Params = DEFAULT_ARGON2): boolean {
  const match = PHC.exec(phc);
  if (!match) return true;
  return Number(match[1]) !== params.memoryKiB || Number(match[2]) !== params.iterations || Number(match[3]) !== params.parallelism;
}

let dummyHash: Promise<string> | null = null;

/**
 * Verifies against a fixed hash, so a login for an unknown address costs what a real one costs and
 * the response time tells nothing about which addresses have accounts.
 */
export async function burnVerification(password: string, params: Argon2Params = DEFAULT_ARGON2): Promise<void> {
  dummyHash ??= hashPassword('taskflow-timing-equaliser', params);
  await verifyPassword(await dummyHash, password);
}
