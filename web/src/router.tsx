/**
 * A small router over the History API: the app's pages as one union of routes, a hook for the
 * current one, and links that navigate without reloading. Every path here is also served as the
 * app by the server (src/app/plugins/web.ts), so a reload or a shared link lands on the same page.
 */
import { useSyncExternalStore, type AnchorHTMLAttributes, type MouseEvent, type ReactNode } from 'react';

export type Route =
  | { page: 'home' }
  | { page: 'sign-in'; next: string | null }
  | { page: 'forgot-password' }
  | { page: 'reset-password' }
  | { page: 'invitation' }
  | { page: 'projects' }
  | { page: 'board'; projectId: string }
  /** `query`: the list's filters and order, as in the address (`project=…&status=…`). */
  | { page: 'tasks'; query: string }
  | { page: 'workflow'; projectId: string }
  | { page: 'task'; taskId: string }
  | { page: 'account' }
  | { page: 'users' }
  | { page: 'not-found' };

const NAVIGATED = 'taskflow:navigated';
let navigatedInApp = false;

function subscribe(onChange: () => void): () => void {
  window.addEventListener('popstate', onChange);
  window.addEventListener(NAVIGATED, onChange);
  return () => {
    window.removeEventListener('popstate', onChange);
    window.removeEventListener(NAVIGATED, onChange);
  };
}

function snapshot(): string {
  return `${window.location.pathname}${window.location.search}`;
}

/** The current path and query, re-rendering on every navigation. */
export function useLocation(): { pathname: string; search: URLSearchParams } {
  const current = useSyncExternalStore(subscribe, snapshot);
  const url = new URL(current, window.location.origin);
  return { pathname: url.pathname, search: url.searchParams };
}

/** Goes to `to` (a path with an optional query) inside the app. */
export function navigate(to: string, options: { replace?: boolean } = {}): void {
  if (options.replace) window.history.replaceState(null, '', to);
  else window.history.pushState(null, '', to);
  navigatedInApp = true;
  window.dispatchEvent(new Event(NAVIGATED));
  if (!options.replace) window.scrollTo(0, 0);
}

/** Whether the page on screen was reached by navigating inside the app (not a load); reading it resets it. */
export function takeNavigatedInApp(): boolean {
  const was = navigatedInApp;
  navigatedInApp = false;
  return was;
}

const PROJECT_PATH = /^\/projects\/([0-9a-fA-F-]{36})$/;
const TASK_PATH = /^\/tasks\/([0-9a-fA-F-]{36})$/;
const WORKFLOW_PATH = /^\/projects\/([0-9a-fA-F-]{36})\/workflow$/;

/** The route a path names. */
export function parseRoute(pathname: string, search: URLSearchParams): Route {
  const path = pathname.length > 1 ? pathname.replace(/\/+$/, '') : pathname;
  switch (path) {
    case '/':
      return { page: 'home' };
    case '/sign-in':
      return { page: 'sign-in', next: safeNext(search.get('next')) };
    case '/forgot-password':
      return { page: 'forgot-password' };
    case '/reset-password':
      return { page: 'reset-password' };
    case '/invitation':
      return { page: 'invitation' };
    case '/projects':
      return { page: 'projects' };
    case '/tasks':
      return { page: 'tasks', query: search.toString() };
    case '/account':
      return { page: 'account' };
    case '/users':
      return { page: 'users' };
  }
  const projectId = PROJECT_PATH.exec(path)?.[1];
  if (projectId) return { page: 'board', projectId };
  const workflowOf = WORKFLOW_PATH.exec(path)?.[1];
  if (workflowOf) return { page: 'workflow', projectId: workflowOf };
  const taskId = TASK_PATH.exec(path)?.[1];
  if (taskId) return { page: 'task', taskId };
  return { page: 'not-found' };
}

/** Only a path of this site may be where sign-in leads: never another origin (`//evil.example`). */
function safeNext(next: string | null): string | null {
  if (next === null || !next.startsWith('/') || next.startsWith('//') || next.startsWith('/\\')) return null;
  return next;
}

type LinkProps = Omit<AnchorHTMLAttributes<HTMLAnchorElement>, 'href'> & { to: string; children: ReactNode };

/** An ordinary link (it opens in a new tab with a modifier key) that navigates inside the app. */
export function Link({ to, children, onClick, ...rest }: LinkProps) {
  const handle = (event: MouseEvent<HTMLAnchorElement>) => {
    onClick?.(event);
    if (event.defaultPrevented || event.button !== 0 || event.metaKey || event.ctrlKey || event.shiftKey || event.altKey) return;
    event.preventDefault();
    navigate(to);
  };
  return (
    <a href={to} onClick={handle} {...rest}>
      {children}
    </a>
  );
}
