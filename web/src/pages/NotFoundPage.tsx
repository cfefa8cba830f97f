/** A path that names no page of the app. */
import { PageHeading } from '../components/PageHeading.tsx';
import { Link } from '../router.tsx';

export function NotFoundPage() {
  return (
    <>
      <PageHeading title="Page not found" />
      <p>There is no such page here.</p>
      <p>
        <Link to="/projects">Go to the projects</Link>
      </p>
    </>
  );
}
