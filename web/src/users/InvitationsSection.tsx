/** Inviting people by e-mail with a role, and the invitations sent (pending ones can be revoked). */
import { useState, type SubmitEvent } from 'react';
import { fieldMessage } from '../api/problem.ts';
import { invite, listInvitations, revokeInvitation } from '../api/users.ts';
import { ROLES, type CurrentUser, type Invitation, type Role } from '../api/types.ts';
import { ErrorAlert, LoadFailed, Loading, Notice } from '../components/Alerts.tsx';
import { SelectField, TextField } from '../components/Fields.tsx';
import { formatDateTime } from '../components/format.ts';
import { useAction, useLoad } from '../hooks/useAsync.ts';

export function InvitationsSection({ me }: { me: CurrentUser }) {
  const invitations = useLoad(listInvitations, []);
  const [email, setEmail] = useState('');
  const [role, setRole] = useState<Role>('member');
  const [notice, setNotice] = useState<string | null>(null);
  const send = useAction(async () => {
    setNotice(null);
    const sent = await invite(email.trim(), role);
    setEmail('');
    setNotice(`An invitation is on its way to ${sent.email}; its link works for 7 days.`);
    invitations.reload();
  });
  const revoke = useAction(async (invitation: Invitation) => {
    setNotice(null);
    await revokeInvitation(invitation.id);
    setNotice(`The invitation to ${invitation.email} is revoked.`);
    invitations.reload();
  });
  const submit = (event: SubmitEvent<HTMLFormElement>) => {
    event.preventDefault();
    void send.run();
  };
  const roles = me.role === 'owner' ? ROLES : ROLES.filter((r) => r !== 'owner');
  return (
    <section aria-labelledby="invitations" className="section">
      <h2 id="invitations">Invitations</h2>
      {notice ? <Notice>{notice}</Notice> : null}
      <ErrorAlert error={send.error ?? revoke.error} />
      <form onSubmit={submit} className="form form-inline">
        <TextField label="E-mail address" type="email" name="inviteEmail" autoComplete="off" required value={email} error={fieldMessage(send.error, '/email')} onChange={(e) => setEmail(e.target.value)} />
        <SelectField label="Role" name="inviteRole" value={role} options={roles.map((r) => ({ value: r, label: r }))} onChange={(e) => setRole(e.target.value as Role)} />
        <div className="form-actions">
          <button type="submit" className="button button-primary" disabled={send.pending}>
            Invite
          </button>
        </div>
      </form>
      {invitations.status === 'loading' ? <Loading what="invitations" /> : null}
      {invitations.status === 'error' ? <LoadFailed error={invitations.error} retry={invitations.reload} /> : null}
      {invitations.status === 'ready' && invitations.data.length > 0 ? (
        <table className="table">
          <caption className="visually-hidden">Invitations</caption>
          <thead>
            <tr>
              <th scope="col">Address</th>
              <th scope="col">Role</th>
              <th scope="col">Status</th>
              <th scope="col">Expires</th>
              <th scope="col">
                <span className="visually-hidden">Actions</span>
              </th>
            </tr>
          </thead>
          <tbody>
            {invitations.data.map((invitation) => (
              <tr key={invitation.id}>
                <td data-label="Address">{invitation.email}</td>
                <td data-label="Role">{invitation.role}</td>
                <td data-label="Status">{invitation.status}</td>
                <td data-label="Expires">{formatDateTime(invitation.expiresAt)}</td>
                <td>
                  {invitation.status === 'pending' ? (
                    <button type="button" className="button button-quiet" disabled={revoke.pending} onClick={() => void revoke.run(invitation)}>
                      Revoke<span className="visually-hidden"> the invitation to {invitation.email}</span>
                    </button>
                  ) : null}
                </td>
              </tr>
            ))}
          </tbody>
        </table>
      ) : null}
    </section>
  );
}
