/** Administration for admins and owners: users and their roles, invitations, and the sign-in settings. */
import { PageHeading } from '../components/PageHeading.tsx';
import { mayManageUsers } from '../permissions.ts';
import { useUser } from '../session.tsx';
import { NotFoundPage } from '../pages/NotFoundPage.tsx';
import { InvitationsSection } from './InvitationsSection.tsx';
import { SettingsSection } from './SettingsSection.tsx';
import { UsersSection } from './UsersSection.tsx';

export function UsersPage() {
  const user = useUser();
  if (!mayManageUsers(user.role)) return <NotFoundPage />;
  return (
    <>
      <PageHeading title="Users" />
      <UsersSection me={user} />
      <InvitationsSection me={user} />
      <SettingsSection me={user} />
    </>
  );
}
