/** The organisation's users: role changes, deactivation and ending all of a user's sessions. */
import { useState, type SubmitEvent } from 'react';
import { changeRole, deactivateUser, endSessionsOf, listUsers, reactivateUser } from '../api/users.ts';
import { ROLES, type CurrentUser, type Role, type User } from '../api/types.ts';
import { ErrorAlert, LoadFailed, Loading, Notice } from '../components/Alerts.tsx';
import { useAction, useLoad } from '../hooks/useAsync.ts';

/** Whether `me` may change `target` at all (the server's rules: not oneself; owners only by owners). */
function mayChange(me: CurrentUser, target: User): boolean {
  return target.id !== me.id && (me.role === 'owner' || target.role !== 'owner');
}

/** The roles `me` may give. */
function grantable(me: CurrentUser): readonly Role[] {
  return me.role === 'owner' ? ROLES : ROLES.filter((r) => r !== 'owner');
}

export function UsersSection({ me }: { me: CurrentUser }) {
  const users = useLoad(listUsers, []);
  const [notice, setNotice] = useState<string | null>(null);
  const act = useAction(async (work: () => Promise<string>) => {
    setNotice(null);
    setNotice(await work());
    users.reload();
  });
  return (
    <section aria-labelledby="users" className="section">
      <h2 id="users">People</h2>
      {notice ? <Notice>{notice}</Notice> : null}
      <ErrorAlert error={act.error} />
      {users.status === 'loading' ? <Loading what="users" /> : null}
      {users.status === 'error' ? <LoadFailed error={users.error} retry={users.reload} /> : null}
      {users.status === 'ready' ? (
        <table className="table">
          <caption className="visually-hidden">Users</caption>
          <thead>
            <tr>
              <th scope="col">Name</th>
              <th scope="col">Role</th>
              <th scope="col">Status</th>
              <th scope="col">Second factor</th>
              <th scope="col">
                <span className="visually-hidden">Actions</span>
              </th>
            </tr>
          </thead>
          <tbody>
            {users.data.map((user) => (
              <UserRow key={user.id} me={me} user={user} busy={act.pending} onAct={(work) => void act.run(work)} />
            ))}
          </tbody>
        </table>
      ) : null}
    </section>
  );
}

function UserRow({ me, user, busy, onAct }: { me: CurrentUser; user: User; busy: boolean; onAct: (work: () => Promise<string>) => void }) {
  const [role, setRole] = useState<Role>(user.role);
  // Deactivating signs the user out at once: it asks first.
  const [confirming, setConfirming] = useState(false);
  const changeable = mayChange(me, user);
  const roleId = `role-${user.id}`;
  const submitRole = (event: SubmitEvent<HTMLFormElement>) => {
    event.preventDefault();
    onAct(async () => {
      await changeRole(user.id, role);
      return `${user.displayName} is now ${role === 'admin' || role === 'owner' ? 'an' : 'a'} ${role}; their sessions have ended, and the role applies from their next sign-in.`;
    });
  };
  return (
    <tr>
      <td data-label="Name">
        {user.displayName}
        <br />
        <span className="hint">{user.email}</span>
        {user.id === me.id ? <strong className="tag">you</strong> : null}
      </td>
      <td data-label="Role">
        {changeable && user.status === 'active' ? (
          <form onSubmit={submitRole} className="inline-form">
            <label htmlFor={roleId} className="visually-hidden">
              Role of {user.displayName}
            </label>
            <select id={roleId} value={role} onChange={(e) => setRole(e.target.value as Role)}>
              {grantable(me).map((r) => (
                <option key={r} value={r}>
                  {r}
                </option>
              ))}
            </select>
            <button type="submit" className="button button-quiet" disabled={busy || role === user.role}>
              Change<span className="visually-hidden"> the role of {user.displayName}</span>
            </button>
          </form>
        ) : (
          user.role
        )}
      </td>
      <td data-label="Status">{user.status}</td>
      <td data-label="Second factor">{user.secondFactor ? 'on' : 'off'}</td>
      <td>
        {changeable ? (
          <div className="row-actions">
            {user.status === 'active' ? (
              <>
                <button
                  type="button"
                  className="button button-quiet"
                  disabled={busy}
                  onClick={() =>
                    onAct(async () => {
                      const ended = await endSessionsOf(user.id);
                      return `${user.displayName} is signed out everywhere (${ended} ${ended === 1 ? 'session' : 'sessions'} ended).`;
                    })
                  }
                >
                  Sign out everywhere<span className="visually-hidden">: {user.displayName}</span>
                </button>
                {confirming ? (
                  <span className="confirm" role="group" aria-label={`Deactivate ${user.displayName}?`}>
                    <span>Deactivate {user.displayName}? They are signed out at once.</span>
                    <button
                      type="button"
                      className="button button-danger"
                      disabled={busy}
                      onClick={() => {
                        setConfirming(false);
                        onAct(async () => {
                          await deactivateUser(user.id);
                          return `${user.displayName} is deactivated and signed out.`;
                        });
                      }}
                    >
                      Yes, deactivate<span className="visually-hidden"> {user.displayName}</span>
                    </button>
                    {/* The focus goes to the choice that changes nothing. */}
                    <button type="button" className="button" autoFocus onClick={() => setConfirming(false)}>
                      Keep<span className="visually-hidden"> {user.displayName} active</span>
                    </button>
                  </span>
                ) : (
                  <button type="button" className="button button-danger" disabled={busy} onClick={() => setConfirming(true)}>
                    Deactivate<span className="visually-hidden"> {user.displayName}</span>
                  </button>
                )}
              </>
            ) : (
              <button
                type="button"
                className="button button-quiet"
                disabled={busy}
                onClick={() =>
                  onAct(async () => {
                    await reactivateUser(user.id);
                    return `${user.displayName} can sign in again.`;
                  })
                }
              >
                Reactivate<span className="visually-hidden"> {user.displayName}</span>
              </button>
            )}
          </div>
        ) : null}
      </td>
    </tr>
  );
}
