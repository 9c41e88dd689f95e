import { useEffect, useState, type FormEvent } from 'react';
import { api, ApiError, request, roleAtLeast } from '../api';
import { useAuth } from '../auth';
import { Card, Empty, ErrorState, Loading, PageTitle, RiskBadge, useAsync, TableWrap } from '../components/ui';
import { pct } from '../format';
import { Link } from '../router';

interface Alert {
  id: string;
  kind: string;
  company_id: string;
  symbol: string;
  name: string;
  reporting_year: string;
  reporting_quarter: string | null;
  reasons: string[];
  old_probability: number | null;
  new_probability: number;
  old_risk_level: string | null;
  new_risk_level: string;
  old_rating: string | null;
  new_rating: string;
  access_level: string;
  bulk_job_id: string | null;
  read_at: string | null;
  created_at: string;
}
interface Watch { id: string; company_id: string; symbol: string; name: string; access_level: string; pd_threshold: number }
interface Webhook { id: string; access_level: string; url: string; is_active: boolean; created_at: string }
interface Delivery { id: string; alert_count: number; status: string; attempts: number; last_status_code: number | null; last_error: string | null; created_at: string; delivered_at: string | null; bulk_job_id: string | null }

const REASON: Record<string, string> = { risk_level: 'risk level changed', implied_rating: 'implied rating changed', pd_move: 'PD moved beyond the threshold' };

const READ_EVENT = 'accunode:alerts-read';

/** The unread count (the navigation shows it), read again when alerts are marked read. */
export function useUnreadAlerts(): number {
  const { data, reload } = useAsync(() => api.get<{ unread: number }>('/alerts/unread-count'), []);
  useEffect(() => {
    window.addEventListener(READ_EVENT, reload);
    return () => window.removeEventListener(READ_EVENT, reload);
  }, [reload]);
  return data?.unread ?? 0;
}

export function Alerts() {
  const { user } = useAuth();
  const inbox = useAsync(() => api.get<{ unread: number; items: Alert[] }>('/alerts', { limit: 100 }), []);
  const watches = useAsync(() => api.get<{ items: Watch[] }>('/watches'), []);
  const hooks = useAsync(() => api.get<{ items: Webhook[]; signature_header: string; timestamp_header: string }>('/webhooks'), []);
  const [busy, setBusy] = useState(false);

  const markAll = async () => {
    setBusy(true);
    try {
      await api.post('/alerts/read', { all: true });
      inbox.reload();
      window.dispatchEvent(new Event(READ_EVENT));
    } finally {
      setBusy(false);
    }
  };
  const unwatch = async (id: string) => {
    await api.del(`/watches/${id}`);
    watches.reload();
  };

  return (
    <main id="main" className="page">
      <PageTitle sub="Changes to the companies you (or your organization) watch: risk level, implied rating, or a PD move beyond the watch's threshold.">Alerts</PageTitle>
      <Card
        title={`Inbox${inbox.data ? ` (${inbox.data.unread} unread)` : ''}`}
        id="c-inbox"
        actions={
          inbox.data && inbox.data.unread > 0 ? (
            <button type="button" className="secondary small" onClick={() => void markAll()} disabled={busy}>
              Mark all read
            </button>
          ) : undefined
        }
      >
        {inbox.loading && !inbox.data && <Loading what="Loading alerts" />}
        {inbox.error !== null && <ErrorState error={inbox.error} retry={inbox.reload} />}
        {inbox.data && inbox.data.items.length === 0 && <Empty title="No alerts yet">Watch a company from its page to hear about its changes.</Empty>}
        {inbox.data && inbox.data.items.length > 0 && (
          <TableWrap label="Alerts">
            <table className="table" data-testid="alerts-table">
              <caption className="sr-only">Alerts, newest first</caption>
              <thead>
                <tr>
                  <th scope="col">Company</th>
                  <th scope="col">Period</th>
                  <th scope="col" className="num">PD</th>
                  <th scope="col">Risk</th>
                  <th scope="col" className="hide-sm">Rating</th>
                  <th scope="col" className="hide-sm">Why</th>
                  <th scope="col" className="hide-sm">When</th>
                </tr>
              </thead>
              <tbody>
                {inbox.data.items.map((a) => (
                  <tr key={a.id} className={a.read_at ? '' : 'unread'}>
                    <th scope="row">
                      <Link to={`/companies/${a.company_id}`}>
                        <span className="symbol">{a.symbol}</span> {a.name}
                      </Link>
                      {!a.read_at && <span className="sr-only"> (unread)</span>}
                    </th>
                    <td>
                      {a.reporting_year} {a.reporting_quarter ?? ''} <span className="muted small">{a.kind}</span>
                    </td>
                    <td className="num">
                      {pct(a.old_probability)} → {pct(a.new_probability)}
                    </td>
                    <td>
                      <RiskBadge level={a.old_risk_level} /> → <RiskBadge level={a.new_risk_level} />
                    </td>
                    <td className="hide-sm">
                      {a.old_rating ?? '–'} → {a.new_rating}
                    </td>
                    <td className="hide-sm">{a.reasons.map((r) => REASON[r] ?? r).join('; ')}</td>
                    <td className="hide-sm small">{new Date(a.created_at).toLocaleString()}{a.bulk_job_id ? ' · bulk upload' : ''}</td>
                  </tr>
                ))}
              </tbody>
            </table>
          </TableWrap>
        )}
      </Card>
      <Card title="Watch list" id="c-watches">
        {watches.data && watches.data.items.length === 0 && <Empty title="You watch no company yet">Use “Watch” on a company's page.</Empty>}
        {watches.data && watches.data.items.length > 0 && (
          <ul className="plain-list">
            {watches.data.items.map((w) => (
              <li key={w.id}>
                <Link to={`/companies/${w.company_id}`}>
                  <span className="symbol">{w.symbol}</span> {w.name}
                </Link>{' '}
                <span className="muted small">
                  {w.access_level === 'organization' ? 'organization' : 'personal'} · alerts beyond {(w.pd_threshold * 100).toFixed(2)} pp
                </span>{' '}
                <button type="button" className="linklike small" onClick={() => void unwatch(w.id)} aria-label={`Stop watching ${w.symbol}`}>
                  Stop watching
                </button>
              </li>
            ))}
          </ul>
        )}
      </Card>
      <WebhookCard hooks={hooks.data?.items ?? []} header={hooks.data?.signature_header ?? ''} tsHeader={hooks.data?.timestamp_header ?? ''} reload={hooks.reload} orgAdmin={roleAtLeast(user?.role, 'org_admin') && !!user?.organization_id} />
    </main>
  );
}

function WebhookCard({ hooks, header, tsHeader, reload, orgAdmin }: { hooks: Webhook[]; header: string; tsHeader: string; reload: () => void; orgAdmin: boolean }) {
  const [url, setUrl] = useState('');
  const [level, setLevel] = useState<'personal' | 'organization'>('personal');
  const [secret, setSecret] = useState<string | null>(null);
  const [error, setError] = useState<string | null>(null);
  const [shown, setShown] = useState<string | null>(null);
  const submit = async (e: FormEvent) => {
    e.preventDefault();
    setError(null);
    try {
      const r = await request<{ secret: string }>('PUT', '/webhooks', { body: { url: url.trim(), access_level: level } });
      setSecret(r.secret);
      setUrl('');
      reload();
    } catch (err) {
      setError(err instanceof ApiError ? err.message : 'Saving the webhook failed.');
    }
  };
  return (
    <Card title="Webhook" id="c-webhook">
      <p className="muted small">
        Alerts are POSTed as JSON to this address, signed: <code>{header}</code> is <code>sha256=</code> and the HMAC-SHA256 of “<code>{tsHeader}</code>.body” with your secret. A bulk upload's alerts arrive in one delivery.
      </p>
      {hooks.map((h) => (
        <div key={h.id} className="webhook-row">
          <p>
            <strong>{h.access_level === 'organization' ? 'Organization' : 'Personal'}:</strong> <code>{h.url}</code>{' '}
            <button type="button" className="linklike small" onClick={() => setShown(shown === h.id ? null : h.id)} aria-expanded={shown === h.id}>
              {shown === h.id ? 'Hide deliveries' : 'Show deliveries'}
            </button>
          </p>
          {shown === h.id && <Deliveries id={h.id} />}
        </div>
      ))}
      {secret && (
        <div className="notice success" role="status">
          <p>
            Signing secret (shown only now; store it with the receiver): <code data-testid="webhook-secret">{secret}</code>
          </p>
        </div>
      )}
      <form className="inline-form" onSubmit={(e) => void submit(e)} aria-label="Set the webhook">
        <div className="field grow">
          <label htmlFor="wh-url">Webhook URL</label>
          <input id="wh-url" type="url" required placeholder="https://example.com/accunode" value={url} onChange={(e) => setUrl(e.target.value)} />
        </div>
        <div className="field">
          <label htmlFor="wh-level">For</label>
          <select id="wh-level" value={level} onChange={(e) => setLevel(e.target.value as 'personal' | 'organization')}>
            <option value="personal">My alerts</option>
            {orgAdmin && <option value="organization">My organization's alerts</option>}
          </select>
        </div>
        <button type="submit">Save and generate a secret</button>
      </form>
      {error && (
        <p className="error-text" role="alert">
          {error}
        </p>
      )}
    </Card>
  );
}

function Deliveries({ id }: { id: string }) {
  const { data, error, loading, reload } = useAsync(() => api.get<{ items: Delivery[] }>(`/webhooks/${id}/deliveries`), [id]);
  if (loading && !data) return <Loading what="Loading deliveries" />;
  if (error !== null) return <ErrorState error={error} retry={reload} />;
  if (!data || data.items.length === 0) return <Empty title="Nothing delivered yet" />;
  return (
    <TableWrap label="Webhook deliveries">
      <table className="table" data-testid="deliveries-table">
        <caption className="sr-only">Webhook deliveries, newest first</caption>
        <thead>
          <tr>
            <th scope="col">When</th>
            <th scope="col" className="num">Alerts</th>
            <th scope="col">Status</th>
            <th scope="col" className="num">Attempts</th>
            <th scope="col" className="hide-sm">Last answer</th>
          </tr>
        </thead>
        <tbody>
          {data.items.map((d) => (
            <tr key={d.id}>
              <td className="small">{new Date(d.created_at).toLocaleString()}</td>
              <td className="num">{d.alert_count}</td>
              <td>{d.status}</td>
              <td className="num">{d.attempts}</td>
              <td className="hide-sm small">{d.last_error ?? (d.last_status_code ? `HTTP ${d.last_status_code}` : '–')}</td>
            </tr>
          ))}
        </tbody>
      </table>
    </TableWrap>
  );
}
