/**
 * The app: which page a path shows, and who may see it. Pages for signed-in users send everyone
 * else to sign in (and back afterwards); a user who owes the organisation a second factor is sent
 * to set one up first.
 */
import { AccountPage } from './account/AccountPage.tsx';
import { BoardPage } from './board/BoardPage.tsx';
import { LoadFailed, Loading } from './components/Alerts.tsx';
import { AppLayout, PublicLayout } from './components/Layout.tsx';
import { Redirect } from './components/Redirect.tsx';
import { ForgotPasswordPage } from './pages/ForgotPasswordPage.tsx';
import { InvitationPage } from './pages/InvitationPage.tsx';
import { NotFoundPage } from './pages/NotFoundPage.tsx';
import { ProjectsPage } from './pages/ProjectsPage.tsx';
import { ResetPasswordPage } from './pages/ResetPasswordPage.tsx';
import { SignInPage } from './pages/SignInPage.tsx';
import { TaskListPage } from './pages/TaskListPage.tsx';
import { parseRoute, useLocation, type Route } from './router.tsx';
import { SessionProvider, useSession } from './session.tsx';
import { TaskPage } from './task/TaskPage.tsx';
import { UsersPage } from './users/UsersPage.tsx';
import { WorkflowPage } from './workflow/WorkflowPage.tsx';

export function App() {
  return (
    <SessionProvider>
      <Pages />
    </SessionProvider>
  );
}

/** Pages anyone may open, signed in or not. */
function publicPage(route: Route) {
  switch (route.page) {
    case 'forgot-password':
      return <ForgotPasswordPage />;
    case 'reset-password':
      return <ResetPasswordPage />;
    case 'invitation':
      return <InvitationPage />;
    default:
      return null;
  }
}

function signedInPage(route: Route) {
  switch (route.page) {
    case 'home':
      return <Redirect to="/projects" />;
    case 'sign-in':
      return <Redirect to={route.next ?? '/projects'} />;
    case 'projects':
      return <ProjectsPage />;
    case 'board':
      return <BoardPage key={route.projectId} projectId={route.projectId} />;
    case 'tasks':
      return <TaskListPage query={route.query} />;
    case 'workflow':
      return <WorkflowPage key={route.projectId} projectId={route.projectId} />;
    case 'task':
      return <TaskPage key={route.taskId} taskId={route.taskId} />;
    case 'account':
      return <AccountPage />;
    case 'users':
      return <UsersPage />;
    default:
      return <NotFoundPage />;
  }
}

function Pages() {
  const { pathname, search } = useLocation();
  const route = parseRoute(pathname, search);
  const session = useSession();
  const { state } = session;
  if (!state) {
    return (
      <PublicLayout>
        {session.loadError ? <LoadFailed error={session.loadError} retry={() => void session.refresh().catch(() => undefined)} /> : <Loading what="TaskFlow" />}
      </PublicLayout>
    );
  }
  const open = publicPage(route);
  if (open) return <PublicLayout>{open}</PublicLayout>;
  if (route.page === 'sign-in' && state.stage !== 'active') {
    return (
      <PublicLayout>
        <SignInPage next={route.next} />
      </PublicLayout>
    );
  }
  if (state.stage !== 'active' || !state.user) {
    const here = `${pathname}${search.size > 0 ? `?${search.toString()}` : ''}`;
    return <Redirect to={route.page === 'home' ? '/sign-in' : `/sign-in?next=${encodeURIComponent(here)}`} />;
  }
  if (state.mustEnrolSecondFactor && route.page !== 'account') return <Redirect to="/account" />;
  return <AppLayout user={state.user}>{signedInPage(route)}</AppLayout>;
}
