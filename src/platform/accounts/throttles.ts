/**
 * Throttles on guessing, shared by every app host through the control database
 * (rate-limiter-flexible's Postgres store on the `throttles` table):
 *  - sign-in failures per account: at most N an hour, and after the fifth in a row an exponential
 *    wait before the next try (1 s, 2 s, 4 s … up to 15 min);
 *  - sign-in failures per client address;
 *  - password-reset requests per account and per address.
 * Keys are the normalised e-mail address as typed, never a user id, so a throttled answer says
 * nothing about whether an account exists.
 */
import type pg from 'pg';
import { RateLimiterPostgres, RateLimiterRes } from 'rate-limiter-flexible';
import { createHash } from 'node:crypto';

export interface ThrottleLimits {
  loginFailuresPerAccountPerHour: number;
  loginFailuresPerIpPerHour: number;
  resetRequestsPerAccountPerHour: number;
  resetRequestsPerIpPerHour: number;
}

const HOUR = 3600;
/** Failures in a row allowed before the backoff starts. */
const FREE_FAILURES = 5;
const MAX_BACKOFF_SECONDS = 900;

export type ThrottleVerdict = { allowed: true } | { allowed: false; retryAfterSeconds: number };

/** Keys hold no address in clear: the table is readable by operators. */
function keyOf(tenantId: string, email: string): string {
  return `${tenantId}:${createHash('sha256').update(email).digest('base64url')}`;
}

export class Throttles {
  readonly #accountFailures: RateLimiterPostgres;
  readonly #accountBackoff: RateLimiterPostgres;
  readonly #ipFailures: RateLimiterPostgres;
  readonly #resetAccount: RateLimiterPostgres;
  readonly #resetIp: RateLimiterPostgres;

  constructor(options: { control: pg.Pool; limits: ThrottleLimits }) {
    const make = (keyPrefix: string, points: number, duration: number) =>
      new RateLimiterPostgres({ storeClient: options.control, storeType: 'pool', tableName: 'throttles', tableCreated: true, keyPrefix, points, duration });
    this.#accountFailures = make('login-account', options.limits.loginFailuresPerAccountPerHour, HOUR);
    this.#accountBackoff = make('login-backoff', 1, MAX_BACKOFF_SECONDS);
    this.#ipFailures = make('login-ip', options.limits.loginFailuresPerIpPerHour, HOUR);
    this.#resetAccount = make('reset-account', options.limits.resetRequestsPerAccountPerHour, HOUR);
    this.#resetIp = make('reset-ip', options.limits.resetRequestsPerIpPerHour, HOUR);
  }

  /** Whether a sign-in for this address from this client may be tried now. */
  async checkLogin(tenantId: string, email: string, ip: string): Promise<ThrottleVerdict> {
    const key = keyOf(tenantId, email);
    const [account, backoff, byIp] = await Promise.all([this.#accountFailures.get(key), this.#accountBackoff.get(key), this.#ipFailures.get(ip)]);
    const waits: number[] = [];
    if (account && account.remainingPoints <= 0) waits.push(account.msBeforeNext);
    if (backoff && backoff.consumedPoints > 0) waits.push(backoff.msBeforeNext);
    if (byIp && byIp.remainingPoints <= 0) waits.push(byIp.msBeforeNext);
    if (waits.length === 0) return { allowed: true };
    return { allowed: false, retryAfterSeconds: Math.max(1, Math.ceil(Math.max(...waits) / 1000)) };
  }

  /** Counts a failed sign-in and starts the backoff once past the free failures. */
  async loginFailed(tenantId: string, email: string, ip: string): Promise<void> {
    const key = keyOf(tenantId, email);
    const [account] = await Promise.all([consumeQuietly(this.#accountFailures, key), consumeQuietly(this.#ipFailures, ip)]);
    const failures = account.consumedPoints;
    if (failures >= FREE_FAILURES) {
      const seconds = Math.min(MAX_BACKOFF_SECONDS, 2 ** (failures - FREE_FAILURES));
      await this.#accountBackoff.block(key, seconds);
    }
  }

  /** A successful sign-in clears the account's failures (not the address's). */
  async loginSucceeded(tenantId: string, email: string): Promise<void> {
    const key = keyOf(tenantId, email);
    await Promise.all([this.#accountFailures.delete(key), this.#accountBackoff.delete(key)]);
  }

  /** Takes one reset request; says which limit, if any, it went over. */
  async takeResetRequest(tenantId: string, email: string, ip: string): Promise<'ok' | 'account-limited' | 'ip-limited'> {
    const byIp = await consumeQuietly(this.#resetIp, ip);
    if (byIp.consumedPoints > this.#resetIp.points) return 'ip-limited';
    const account = await consumeQuietly(this.#resetAccount, keyOf(tenantId, email));
    if (account.consumedPoints > this.#resetAccount.points) return 'account-limited';
    return 'ok';
  }
}

/** consume() rejects with the result once over the limit; here that is a normal outcome. */
async function consumeQuietly(limiter: RateLimiterPostgres, key: string): Promise<RateLimiterRes> {
  try {
    return await limiter.consume(key);
  } catch (err) {
    if (err instanceof RateLimiterRes) return err;
    throw err;
  }
}
