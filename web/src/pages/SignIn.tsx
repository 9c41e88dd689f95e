import { useState, type FormEvent } from 'react';
import { ApiError } from '../api';
import { useAuth } from '../auth';
import { navigate, useLocation } from '../router';

export function SignIn() {
  const auth = useAuth();
  const { search } = useLocation();
  const [login, setLogin] = useState('');
  const [password, setPassword] = useState('');
  const [remember, setRemember] = useState(false);
  const [error, setError] = useState<string | null>(null);
  const [busy, setBusy] = useState(false);

  async function submit(e: FormEvent) {
    e.preventDefault();
    setError(null);
    if (!login.trim() || !password) {
      setError('Enter your e-mail or username and your password.');
      return;
    }
    setBusy(true);
    try {
      await auth.signIn(login.trim(), password, remember);
      const next = search.get('next');
      navigate(next && next.startsWith('/') && !next.startsWith('//') ? next : '/', { replace: true });
    } catch (err) {
      setError(
        err instanceof ApiError
          ? err.status === 401 || err.status === 422
            ? 'That e-mail/username and password do not match.'
            : err.status === 429
              ? 'Too many attempts. Wait a little and try again.'
              : err.message
          : 'Could not sign in.',
      );
    } finally {
      setBusy(false);
    }
  }

  return (
    <main className="signin" id="main">
      <div className="signin-card card">
        <div className="brand big" aria-hidden="true">
          <img src="/favicon.svg" alt="" width="36" height="36" /> AccuNode
        </div>
        <h1>Sign in</h1>
        <p className="muted">Probability-of-default predictions for your portfolio.</p>
        {auth.notice && (
          <p className="notice info" role="status">
            {auth.notice}
          </p>
        )}
        <form onSubmit={submit} noValidate aria-describedby={error ? 'signin-error' : undefined}>
          <label htmlFor="login">E-mail or username</label>
          <input id="login" name="login" autoComplete="username" value={login} onChange={(e) => setLogin(e.target.value)} required autoFocus />
          <label htmlFor="password">Password</label>
          <input id="password" name="password" type="password" autoComplete="current-password" value={password} onChange={(e) => setPassword(e.target.value)} required />
          <div className="check">
            <input id="remember" type="checkbox" checked={remember} onChange={(e) => setRemember(e.target.checked)} aria-describedby="remember-help" />
            <label htmlFor="remember">Keep me signed in on this device</label>
          </div>
          <p id="remember-help" className="muted small">
            Uses a secure httpOnly cookie. Otherwise your session lives only in this tab's memory and ends when you close or reload it.
          </p>
          {error && (
            <p id="signin-error" className="notice error" role="alert">
              {error}
            </p>
          )}
          <button type="submit" disabled={busy}>
            {busy ? 'Signing in…' : 'Sign in'}
          </button>
        </form>
      </div>
    </main>
  );
}
