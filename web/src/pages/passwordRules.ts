/** What the forms say about new passwords (the server's policy decides; docs/api.md, Password policy). */

export const PASSWORD_HINT = 'At least 12 characters. Not a common password, and without your name or the organisation’s.';

/** A message when the repeated password differs, once something has been typed in both. */
export function passwordMismatch(password: string, repeat: string): string | null {
  return repeat !== '' && password !== repeat ? 'The two passwords differ.' : null;
}
