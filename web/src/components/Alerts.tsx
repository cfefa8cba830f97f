/** Messages on a page: errors (announced at once) and notices (announced politely). */
import type { ReactNode } from 'react';
import { ApiError, readableMessage } from '../api/problem.ts';
import { Link } from '../router.tsx';

/** The readable message of a failed request or action; renders nothing without an error. */
export function ErrorAlert({ error, children }: { error: unknown; children?: ReactNode }) {
  if (error === null || error === undefined) return null;
  return (
    <div className="alert alert-error" role="alert">
      <p>{readableMessage(error)}</p>
      {children}
    </div>
  );
}

/** A success or information message. */
export function Notice({ children }: { children: ReactNode }) {
  return (
    <div className="alert alert-info" role="status">
      {children}
    </div>
  );
}

/** What a page shows while it loads. */
export function Loading({ what }: { what: string }) {
  return (
    <p className="loading" role="status">
      Loading {what}…
    </p>
  );
}

/** What a page shows when its data could not be loaded, with a way to try again when that may help. */
export function LoadFailed({ error, retry }: { error: unknown; retry: () => void }) {
  // Whatever is not there (404) or not allowed (401, 403) stays so; outages and limits pass.
  const lasting = error instanceof ApiError && error.status >= 400 && error.status < 500 && error.status !== 408 && error.status !== 429;
  return (
    <ErrorAlert error={error}>
      {lasting ? (
        <p>
          <Link to="/projects">Go to the projects</Link>
        </p>
      ) : (
        <button type="button" className="button" onClick={retry}>
          Try again
        </button>
      )}
    </ErrorAlert>
  );
}
