/** Reading users from the tenant database; the one place their columns are mapped. */
import type { Role } from '../../policies.ts';
import type { Db } from '../../tenant-db.ts';

export interface UserRecord {
  id: string;
  email: string;
  displayName: string;
  role: Role;
  status: 'active' | 'deactivated';
  passwordHash: string;
  totpSecret: Buffer | null;
  totpEnabledAt: Date | null;
  totpLastStep: number | null;
  createdAt: Date;
}

const COLUMNS = `id, email, display_name AS "displayName", role, status, password_hash AS "passwordHash", totp_secret AS "totpSecret",
  totp_enabled_at AS "totpEnabledAt", totp_last_step::float8 AS "totpLastStep", created_at AS "createdAt"`;

export async function userByEmail(db: Db, email: string): Promise<UserRecord | null> {
  const res = await db.query<UserRecord>(`SELECT ${COLUMNS} FROM app.users WHERE email = $1`, [email]);
  return res.rows[0] ?? null;
}

/** A user by id; `forUpdate` locks the row for the rest of the transaction. */
export async function userById(db: Db, id: string, forUpdate = false): Promise<UserRecord | null> {
  const res = await db.query<UserRecord>(`SELECT ${COLUMNS} FROM app.users WHERE id = $1${forUpdate ? ' FOR UPDATE' : ''}`, [id]);
  return res.rows[0] ?? null;
}

/** The public view of a user: nothing secret, not even whether a hash exists. */
export interface UserView {
  id: string;
  email: string;
  displayName: string;
  role: Role;
  status: 'active' | 'deactivated';
  secondFactor: boolean;
  createdAt: string;
}

export function viewOfUser(u: UserRecord): UserView {
  return { id: u.id, email: u.email, displayName: u.displayName, role: u.role, status: u.status, secondFactor: u.totpEnabledAt !== null, createdAt: u.createdAt.toISOString() };
}

export async function requireSecondFactorSetting(db: Db): Promise<boolean> {
  const res = await db.query<{ require_second_factor: boolean }>('SELECT require_second_factor FROM app.account_settings');
  return res.rows[0]?.require_second_factor ?? false;
}
