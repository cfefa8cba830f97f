/** One's own live sessions (browsers signed in), each of which can be ended. */
import { endOtherSessions, endOwnSession, listOwnSessions } from '../api/account.ts';
import type { AccountSession } from '../api/types.ts';
import { ErrorAlert, LoadFailed, Loading, Notice } from '../components/Alerts.tsx';
import { formatDateTime } from '../components/format.ts';
import { useAction, useLoad } from '../hooks/useAsync.ts';
import { useState } from 'react';

export function SessionsSection() {
  const sessions = useLoad(listOwnSessions, []);
  const [notice, setNotice] = useState<string | null>(null);
  const end = useAction(async (session: AccountSession) => {
    await endOwnSession(session.id);
    setNotice('The session has ended.');
    sessions.reload();
  });
  const endOthers = useAction(async () => {
    const ended = await endOtherSessions();
    setNotice(ended === 1 ? 'One other session has ended.' : `${ended} other sessions have ended.`);
    sessions.reload();
  });
  return (
    <section aria-labelledby="sessions" className="section">
      <h2 id="sessions">Where you are signed in</h2>
      {notice ? <Notice>{notice}</Notice> : null}
      <ErrorAlert error={end.error ?? endOthers.error} />
      {sessions.status === 'loading' ? <Loading what="sessions" /> : null}
      {sessions.status === 'error' ? <LoadFailed error={sessions.error} retry={sessions.reload} /> : null}
      {sessions.status === 'ready' ? (
        <>
          <table className="table">
            <caption className="visually-hidden">Your sessions</caption>
            <thead>
              <tr>
                <th scope="col">Browser</th>
                <th scope="col">Address</th>
                <th scope="col">Signed in</th>
                <th scope="col">Last used</th>
                <th scope="col">
                  <span className="visually-hidden">Actions</span>
                </th>
              </tr>
            </thead>
            <tbody>
              {sessions.data.map((s) => (
                <tr key={s.id}>
                  <td data-label="Browser">
                    {s.userAgent ?? 'Unknown'}
                    {s.current ? <strong className="tag">this browser</strong> : null}
                  </td>
                  <td data-label="Address">{s.ip ?? '—'}</td>
                  <td data-label="Signed in">{formatDateTime(s.createdAt)}</td>
                  <td data-label="Last used">{formatDateTime(s.lastSeenAt)}</td>
                  <td>
                    {s.current ? null : (
                      <button type="button" className="button button-quiet" disabled={end.pending} onClick={() => void end.run(s)}>
                        End<span className="visually-hidden"> the session from {formatDateTime(s.createdAt)}</span>
                      </button>
                    )}
                  </td>
                </tr>
              ))}
            </tbody>
          </table>
          {sessions.data.some((s) => !s.current) ? (
            <button type="button" className="button" disabled={endOthers.pending} onClick={() => void endOthers.run()}>
              End all other sessions
            </button>
          ) : null}
        </>
      ) : null}
    </section>
  );
}
