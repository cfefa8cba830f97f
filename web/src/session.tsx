/**
 * Who is signed in, for the whole app: the session state from GET /api/auth/session, refreshed after
 * signing in or out, and dropped (with a notice for the sign-in page) when the API says the session
 * has ended.
 */
import { createContext, useCallback, useContext, useEffect, useMemo, useState, type ReactNode } from 'react';
import { getSession, signOut as apiSignOut } from './api/auth.ts';
import { onUnauthenticated } from './api/http.ts';
import { readableMessage } from './api/problem.ts';
import type { CurrentUser, Role, SessionState } from './api/types.ts';

interface SessionContextValue {
  /** null while the first answer is on its way. */
  state: SessionState | null;
  /** A failure to learn the session state at all (server down). */
  loadError: string | null;
  /** A message for the sign-in page: why the user is there. */
  notice: string | null;
  setNotice: (notice: string | null) => void;
  refresh: () => Promise<SessionState>;
  signOut: () => Promise<void>;
}

const SessionContext = createContext<SessionContextValue | null>(null);

const SIGNED_OUT: SessionState = { signedIn: false, stage: 'none', mustEnrolSecondFactor: false, user: null, expiresAt: null };

export function SessionProvider({ children }: { children: ReactNode }) {
  const [state, setState] = useState<SessionState | null>(null);
  const [loadError, setLoadError] = useState<string | null>(null);
  const [notice, setNotice] = useState<string | null>(null);

  const refresh = useCallback(async () => {
    try {
      const next = await getSession();
      setState(next);
      setLoadError(null);
      return next;
    } catch (err) {
      setLoadError(readableMessage(err));
      throw err;
    }
  }, []);

  const signOut = useCallback(async () => {
    try {
      await apiSignOut();
    } finally {
      setState(SIGNED_OUT);
    }
  }, []);

  useEffect(() => {
    refresh().catch(() => undefined);
    return onUnauthenticated(() => {
      setNotice('Your session has ended. Sign in again to continue.');
      setState(SIGNED_OUT);
    });
  }, [refresh]);

  const value = useMemo(() => ({ state, loadError, notice, setNotice, refresh, signOut }), [state, loadError, notice, refresh, signOut]);
  return <SessionContext.Provider value={value}>{children}</SessionContext.Provider>;
}

export function useSession(): SessionContextValue {
  const value = useContext(SessionContext);
  if (!value) throw new Error('useSession outside SessionProvider');
  return value;
}

/** The signed-in user; only for pages rendered behind the sign-in check. */
export function useUser(): CurrentUser {
  const user = useSession().state?.user;
  if (!user) throw new Error('useUser on a page for signed-in users only');
  return user;
}

const RANK: Record<Role, number> = { viewer: 0, member: 1, admin: 2, owner: 3 };

/** Whether `role` is `minimum` or above. */
export function atLeast(role: Role, minimum: Role): boolean {
  return RANK[role] >= RANK[minimum];
}
