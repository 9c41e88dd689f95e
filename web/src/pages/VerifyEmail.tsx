// The target of the link in the verification e-mail: /verify-email?token=…. Works signed in or
// not (the link is often opened on another device).
import { useEffect, useState } from 'react';
import { ApiError, request } from '../api';
import { useAuth } from '../auth';
import { Loading, PageTitle } from '../components/ui';
import { Link } from '../router';

// A token is single-use: React's development double-mount must not spend it twice and then
// report the second attempt's "already used".
const attempts = new Map<string, Promise<void>>();
function verifyOnce(token: string): Promise<void> {
  let p = attempts.get(token);
  if (!p) {
    p = request<{ verified: true }>('POST', '/auth/verify', { body: { token }, quiet401: true }).then(() => undefined);
    attempts.set(token, p);
  }
  return p;
}

export function VerifyEmail({ token }: { token: string | null }) {
  const { user, refresh } = useAuth();
  const [state, setState] = useState<{ status: 'working' | 'done' | 'failed'; message?: string }>({ status: token ? 'working' : 'failed', ...(token ? {} : { message: 'This link has no token. Open the link from the e-mail as it is, or ask for a new e-mail.' }) });

  useEffect(() => {
    if (!token) return;
    let live = true;
    verifyOnce(token)
      .then(async () => {
        if (live) setState({ status: 'done' });
        if (user) await refresh().catch(() => {});
      })
      .catch((err: unknown) => {
        if (live) setState({ status: 'failed', message: err instanceof ApiError ? err.message.replace(/^token: /, '') : 'The address could not be confirmed right now; try the link again shortly.' });
      });
    return () => {
      live = false;
    };
    // Only the token decides whether to verify; user/refresh changing afterwards must not re-run it.
  }, [token]);

  return (
    <main id="main" className="page">
      <PageTitle>Confirm your e-mail address</PageTitle>
      {state.status === 'working' && <Loading what="Confirming your address" />}
      {state.status === 'done' && (
        <div className="notice success" role="status" data-testid="verify-result">
          <p>Your e-mail address is confirmed. You can now join your organization.</p>
          <p>{user ? <Link to="/">Go to the dashboard</Link> : <Link to="/sign-in">Sign in</Link>}</p>
        </div>
      )}
      {state.status === 'failed' && (
        <div className="notice error" role="alert" data-testid="verify-result">
          <p>{state.message}</p>
          <p>{user ? 'Use “Send a new link” above to get a fresh e-mail.' : <><Link to="/sign-in">Sign in</Link> to ask for a new e-mail.</>}</p>
        </div>
      )}
    </main>
  );
}

/** Shown on every page while the signed-in user's address is unverified. */
export function VerificationBanner() {
  const { user } = useAuth();
  const [sent, setSent] = useState<{ ok: boolean; text: string } | null>(null);
  const [busy, setBusy] = useState(false);
  if (!user || user.is_verified) return null;
  const resend = async () => {
    setBusy(true);
    try {
      await request('POST', '/auth/verify/resend');
      setSent({ ok: true, text: `A new link is on its way to ${user.email}. Earlier links no longer work.` });
    } catch (err) {
      setSent({ ok: false, text: err instanceof ApiError ? err.message : 'Could not send the e-mail; try again shortly.' });
    } finally {
      setBusy(false);
    }
  };
  return (
    <div className="notice info verify-banner" role="status" data-testid="verify-banner">
      <p>
        Your e-mail address <strong>{user.email}</strong> is not verified yet: follow the link we sent to it before joining an organization.{' '}
        <button type="button" className="secondary small" onClick={() => void resend()} disabled={busy}>
          {busy ? 'Sending…' : 'Send a new link'}
        </button>
      </p>
      {sent && <p role={sent.ok ? undefined : 'alert'}>{sent.text}</p>}
    </div>
  );
}
