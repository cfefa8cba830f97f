/** Replaces the current page with another (as for a page that needs a signed-in user). */
import { useEffect } from 'react';
import { navigate } from '../router.tsx';

export function Redirect({ to }: { to: string }) {
  useEffect(() => {
    navigate(to, { replace: true });
  }, [to]);
  return null;
}
