/** The frame of every page: a skip link, the header with the main navigation, and the main landmark. */
import { useState, type ReactNode } from 'react';
import type { CurrentUser } from '../api/types.ts';
import { Link, navigate, useLocation } from '../router.tsx';
import { atLeast, useSession } from '../session.tsx';
import { ErrorAlert } from './Alerts.tsx';

/** The tenant's name as its address shows it (acme.taskflow.example → acme). */
function organisation(): string {
  return window.location.hostname.split('.')[0] ?? '';
}

function NavLink({ to, children }: { to: string; children: ReactNode }) {
  const { pathname } = useLocation();
  const current = pathname === to || pathname.startsWith(`${to}/`);
  return (
    <Link to={to} aria-current={current ? 'page' : undefined}>
      {children}
    </Link>
  );
}

function SkipLink() {
  return (
    <a className="skip-link" href="#main">
      Skip to content
    </a>
  );
}

/** Pages for a signed-in user. */
export function AppLayout({ user, children }: { user: CurrentUser; children: ReactNode }) {
  const { signOut, setNotice } = useSession();
  const [error, setError] = useState<unknown>(null);
  const leave = async () => {
    setError(null);
    try {
      await signOut();
      setNotice('You have signed out.');
      navigate('/sign-in');
    } catch (err) {
      setError(err);
    }
  };
  return (
    <>
      <SkipLink />
      <header className="app-header">
        <Link to="/projects" className="brand">
          TaskFlow <span className="brand-org">{organisation()}</span>
        </Link>
        <nav aria-label="Main">
          <ul>
            <li>
              <NavLink to="/projects">Projects</NavLink>
            </li>
            <li>
              <NavLink to="/tasks">Tasks</NavLink>
            </li>
            {atLeast(user.role, 'admin') ? (
              <li>
                <NavLink to="/users">Users</NavLink>
              </li>
            ) : null}
            <li>
              <NavLink to="/account">Account</NavLink>
            </li>
          </ul>
        </nav>
        <div className="user-box">
          <span className="user-name" title={user.email}>
            {user.displayName}
          </span>
          <button type="button" className="button button-quiet" onClick={() => void leave()}>
            Sign out
          </button>
        </div>
      </header>
      <main id="main" tabIndex={-1}>
        <ErrorAlert error={error} />
        {children}
      </main>
    </>
  );
}

/** Sign-in and the pages reached from mail links. */
export function PublicLayout({ children }: { children: ReactNode }) {
  return (
    <>
      <SkipLink />
      <header className="public-header">
        <span className="brand">
          TaskFlow <span className="brand-org">{organisation()}</span>
        </span>
      </header>
      <main id="main" className="public-main" tabIndex={-1}>
        <div className="panel">{children}</div>
      </main>
    </>
  );
}
