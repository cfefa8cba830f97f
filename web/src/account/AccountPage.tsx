/** The signed-in user's own account: name, password, second factor and sessions. */
import { Notice } from '../components/Alerts.tsx';
import { PageHeading } from '../components/PageHeading.tsx';
import { useSession, useUser } from '../session.tsx';
import { PasswordSection } from './PasswordSection.tsx';
import { ProfileSection } from './ProfileSection.tsx';
import { SecondFactorSection } from './SecondFactorSection.tsx';
import { SessionsSection } from './SessionsSection.tsx';

export function AccountPage() {
  const user = useUser();
  const enrolling = useSession().state?.mustEnrolSecondFactor === true;
  return (
    <>
      <PageHeading title="Your account" />
      {enrolling ? <Notice>Your organisation requires a second factor. Set one up below to continue.</Notice> : null}
      {enrolling ? null : <ProfileSection user={user} />}
      <SecondFactorSection user={user} />
      <PasswordSection user={user} />
      <SessionsSection />
    </>
  );
}
