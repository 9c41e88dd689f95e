import { useState, type FormEvent } from 'react';
import { api, ApiError, ROLES, roleAtLeast, type Paged, type Role, type User } from '../api';
import { useAuth } from '../auth';
import { Card, Empty, ErrorState, Loading, PageTitle, useAsync, useCursorList, TableWrap } from '../components/ui';
import { dateTime } from '../format';

interface Org {
  id: string;
  tenant_id: string;
  name: string;
  description: string | null;
  is_active: boolean;
  max_members: number;
  join_token_expires_at: string | null;
}
interface Session {
  id: string;
  created_at: string;
  last_activity: string;
  ip: string | null;
  user_agent: string | null;
  current: boolean;
}

const errText = (e: unknown) => (e instanceof ApiError ? e.message : 'Something went wrong.');

export function Admin() {
  const { user } = useAuth();
  const isOrgAdmin = roleAtLeast(user?.role, 'org_admin');
  return (
    <main id="main" className="page">
      <PageTitle sub="Organizations, members, who may join, and your sessions.">Administration</PageTitle>
      {isOrgAdmin ? <Organizations /> : user?.organization_id ? <Membership /> : <JoinOrganization />}
      <Sessions />
    </main>
  );
}

/** A member is done joining: say where they belong instead of offering to join again. */
function Membership() {
  return (
    <Card title="Your organization" id="a-member">
      <p data-testid="membership">You are a member of an organization: what you share with it is visible to its members, and you see theirs. To move to another organization, ask its administrator.</p>
    </Card>
  );
}

function JoinOrganization() {
  const { refresh } = useAuth();
  const [token, setToken] = useState('');
  const [msg, setMsg] = useState<{ ok: boolean; text: string } | null>(null);
  async function submit(e: FormEvent) {
    e.preventDefault();
    if (token.trim().length < 10) return setMsg({ ok: false, text: 'Paste the join token your organization admin gave you.' });
    try {
      await api.post('/auth/join', { token: token.trim() });
      await refresh();
      setMsg({ ok: true, text: 'You have joined the organization.' });
    } catch (err) {
      setMsg({ ok: false, text: errText(err) });
    }
  }
  return (
    <Card title="Join an organization" id="a-join">
      <form onSubmit={submit} className="inline-form">
        <div className="field grow">
          <label htmlFor="join-token">Join token</label>
          <input id="join-token" value={token} onChange={(e) => setToken(e.target.value)} autoComplete="off" aria-describedby="join-help" />
          <p id="join-help" className="help">Your e-mail address must be on the organization's whitelist.</p>
        </div>
        <button type="submit">Join</button>
      </form>
      {msg && (
        <p className={`notice ${msg.ok ? 'success' : 'error'}`} role={msg.ok ? 'status' : 'alert'}>
          {msg.text}
        </p>
      )}
    </Card>
  );
}

function Organizations() {
  const { user } = useAuth();
  const orgList = useCursorList((cursor) => api.get<Paged<Org>>('/organizations', { limit: 100, cursor }), []);
  const orgs = { data: orgList.items, loading: orgList.loading, error: orgList.error, reload: orgList.reload };
  const [selected, setSelected] = useState<string | null>(null);
  const [newName, setNewName] = useState('');
  const [createMsg, setCreateMsg] = useState<string | null>(null);
  const current = selected ?? user?.organization_id ?? orgs.data?.[0]?.id ?? null;
  const canCreate = roleAtLeast(user?.role, 'tenant_admin');

  async function create(e: FormEvent) {
    e.preventDefault();
    if (!newName.trim()) return setCreateMsg('Name the organization.');
    try {
      const o = await api.post<Org>('/organizations', { name: newName.trim(), ...(user?.role === 'super_admin' && user.tenant_id ? { tenant_id: user.tenant_id } : {}) });
      setNewName('');
      setCreateMsg(null);
      orgs.reload();
      setSelected(o.id);
    } catch (err) {
      setCreateMsg(errText(err));
    }
  }

  return (
    <>
      <Card title="Organizations" id="a-orgs">
        {orgs.loading && !orgs.data && <Loading />}
        {orgs.error !== null && <ErrorState error={orgs.error} retry={orgs.reload} />}
        {orgs.data && orgs.data.length === 0 && <Empty title="No organizations yet" />}
        {orgs.data && orgs.data.length > 0 && (
          <TableWrap label="Organizations">
            <table className="table compact">
              <thead>
                <tr>
                  <th scope="col">Name</th>
                  <th scope="col">Status</th>
                  <th scope="col" className="num">Max members</th>
                  <th scope="col">Join token</th>
                </tr>
              </thead>
              <tbody>
                {orgs.data.map((o) => (
                  <tr key={o.id} className={o.id === current ? 'selected' : ''}>
                    <th scope="row">
                      <button type="button" className="linklike" aria-pressed={o.id === current} onClick={() => setSelected(o.id)}>
                        {o.name}
                      </button>
                    </th>
                    <td>{o.is_active ? 'active' : 'inactive'}</td>
                    <td className="num">{o.max_members}</td>
                    <td className="small">{o.join_token_expires_at ? `valid until ${dateTime(o.join_token_expires_at)}` : 'none'}</td>
                  </tr>
                ))}
              </tbody>
            </table>
          </TableWrap>
        )}
        {orgList.more && (
          <button type="button" className="secondary" onClick={orgList.more}>
            Show more organizations
          </button>
        )}
        {canCreate && (
          <form onSubmit={create} className="inline-form">
            <div className="field grow">
              <label htmlFor="org-name">New organization</label>
              <input id="org-name" value={newName} onChange={(e) => setNewName(e.target.value)} maxLength={255} />
            </div>
            <button type="submit">Create</button>
          </form>
        )}
        {createMsg && (
          <p className="notice error" role="alert">
            {createMsg}
          </p>
        )}
      </Card>
      {current && orgs.data && <OrgDetail key={current} org={orgs.data.find((o) => o.id === current) ?? null} id={current} onChanged={orgs.reload} />}
    </>
  );
}

function OrgDetail({ id, org, onChanged }: { id: string; org: Org | null; onChanged: () => void }) {
  const { user } = useAuth();
  const memberList = useCursorList((cursor) => api.get<Paged<User>>('/users', { organization_id: id, limit: 100, cursor }), [id]);
  const members = { data: memberList.items, loading: memberList.loading, error: memberList.error, reload: memberList.reload };
  const whitelist = useAsync(() => api.get<Array<{ email: string; created_at: string }>>(`/organizations/${id}/whitelist`), [id]);
  const [emails, setEmails] = useState('');
  const [token, setToken] = useState<{ token: string; expires_at: string } | null>(null);
  const [msg, setMsg] = useState<{ ok: boolean; text: string } | null>(null);
  const grantable = ROLES.filter((r) => r !== 'super_admin' || user?.role === 'super_admin').filter((r) => roleAtLeast(user?.role, r));

  const act = async (fn: () => Promise<unknown>, ok: string) => {
    try {
      await fn();
      setMsg({ ok: true, text: ok });
    } catch (err) {
      setMsg({ ok: false, text: errText(err) });
    }
  };

  async function addEmails(e: FormEvent) {
    e.preventDefault();
    const list = emails.split(/[\s,;]+/).map((s) => s.trim()).filter(Boolean);
    const bad = list.find((x) => !/^[^@\s]+@[^@\s]+\.[^@\s]+$/.test(x));
    if (list.length === 0) return setMsg({ ok: false, text: 'Enter one or more e-mail addresses.' });
    if (bad) return setMsg({ ok: false, text: `${bad} is not an e-mail address.` });
    await act(async () => {
      await api.post(`/organizations/${id}/whitelist`, { emails: list });
      setEmails('');
      whitelist.reload();
    }, `Added ${list.length} address${list.length === 1 ? '' : 'es'}.`);
  }

  return (
    <Card title={`${org?.name ?? 'Organization'}: members and access`} id="a-org">
      {msg && (
        <p className={`notice ${msg.ok ? 'success' : 'error'}`} role={msg.ok ? 'status' : 'alert'}>
          {msg.text}
        </p>
      )}
      <h3>Members</h3>
      {members.loading && !members.data && <Loading />}
      {members.error !== null && <ErrorState error={members.error} />}
      {members.data && members.data.length === 0 && <Empty title="No members yet">Add addresses to the whitelist and share a join token.</Empty>}
      {members.data && members.data.length > 0 && (
        <TableWrap label="Members">
          <table className="table compact">
            <thead>
              <tr>
                <th scope="col">User</th>
                <th scope="col">E-mail</th>
                <th scope="col">Role</th>
                <th scope="col">Status</th>
              </tr>
            </thead>
            <tbody>
              {members.data.map((m) => (
                <tr key={m.id}>
                  <th scope="row">{m.username}</th>
                  <td>{m.email}</td>
                  <td>
                    <label className="sr-only" htmlFor={`role-${m.id}`}>
                      Role of {m.username}
                    </label>
                    <select
                      id={`role-${m.id}`}
                      value={m.role}
                      disabled={m.id === user?.id}
                      onChange={(e) => void act(async () => { await api.patch(`/users/${m.id}`, { role: e.target.value as Role }); members.reload(); }, `${m.username} is now ${e.target.value}.`)}
                    >
                      {(grantable.includes(m.role) ? grantable : [m.role, ...grantable]).map((r) => (
                        <option key={r} value={r}>
                          {r.replace('_', ' ')}
                        </option>
                      ))}
                    </select>
                  </td>
                  <td>{m.is_active ? 'active' : 'deactivated'}</td>
                </tr>
              ))}
            </tbody>
          </table>
        </TableWrap>
      )}
      {memberList.more && (
        <button type="button" className="secondary" onClick={memberList.more}>
          Show more members
        </button>
      )}
      <div className="grid2">
        <div>
          <h3>Whitelist</h3>
          <p className="muted small">Only these addresses may join with the token.</p>
          {whitelist.error !== null && <ErrorState error={whitelist.error} />}
          {whitelist.data && whitelist.data.length === 0 && <p className="muted">Empty.</p>}
          <ul className="plain">
            {(whitelist.data ?? []).map((w) => (
              <li key={w.email} className="row-between">
                <span>{w.email}</span>
                <button
                  type="button"
                  className="secondary small"
                  aria-label={`Remove ${w.email} from the whitelist`}
                  onClick={() => void act(async () => { await api.del(`/organizations/${id}/whitelist/${encodeURIComponent(w.email)}`); whitelist.reload(); }, `Removed ${w.email}.`)}
                >
                  Remove
                </button>
              </li>
            ))}
          </ul>
          <form onSubmit={addEmails} className="inline-form">
            <div className="field grow">
              <label htmlFor="wl-emails">Add e-mail addresses</label>
              <input id="wl-emails" value={emails} onChange={(e) => setEmails(e.target.value)} placeholder="a@example.com, b@example.com" />
            </div>
            <button type="submit">Add</button>
          </form>
        </div>
        <div>
          <h3>Join token</h3>
          <p className="muted small">
            {org?.join_token_expires_at ? `A token is active until ${dateTime(org.join_token_expires_at)}.` : 'No active token.'} A new token replaces the old one and is shown only once.
          </p>
          {token && (
            <div className="notice success" role="status">
              <p>
                New token (copy it now): <code data-testid="join-token">{token.token}</code>
              </p>
              <p className="small">Valid until {dateTime(token.expires_at)}.</p>
            </div>
          )}
          <div className="actions">
            <button type="button" onClick={() => void act(async () => { setToken(await api.post(`/organizations/${id}/join-token`, {})); onChanged(); }, 'New join token issued.')}>
              Issue a new token
            </button>
            {org?.join_token_expires_at && (
              <button type="button" className="secondary" onClick={() => void act(async () => { await api.del(`/organizations/${id}/join-token`); setToken(null); onChanged(); }, 'Join token revoked.')}>
                Revoke
              </button>
            )}
          </div>
        </div>
      </div>
    </Card>
  );
}

function Sessions() {
  const { signOut } = useAuth();
  const s = useAsync(() => api.get<Session[]>('/auth/sessions'), []);
  return (
    <Card title="Your sessions" id="a-sessions" actions={<button type="button" className="secondary" onClick={() => void signOut(true)}>Sign out everywhere</button>}>
      {s.loading && !s.data && <Loading />}
      {s.error !== null && <ErrorState error={s.error} retry={s.reload} />}
      {s.data && (
        <TableWrap label="Your sessions">
          <table className="table compact">
            <thead>
              <tr>
                <th scope="col">Signed in</th>
                <th scope="col">Last active</th>
                <th scope="col" className="hide-sm">From</th>
                <th scope="col">
                  <span className="sr-only">Actions</span>
                </th>
              </tr>
            </thead>
            <tbody>
              {s.data.map((x) => (
                <tr key={x.id}>
                  <td>{dateTime(x.created_at)}</td>
                  <td>{dateTime(x.last_activity)}</td>
                  <td className="small hide-sm">
                    {x.ip ?? '–'} · {(x.user_agent ?? '').slice(0, 60)}
                  </td>
                  <td>
                    {x.current ? (
                      <span className="muted small">this session</span>
                    ) : (
                      <button type="button" className="secondary small" onClick={() => void api.del(`/auth/sessions/${x.id}`).then(s.reload)}>
                        End
                      </button>
                    )}
                  </td>
                </tr>
              ))}
            </tbody>
          </table>
        </TableWrap>
      )}
    </Card>
  );
}
