import { createContext, useCallback, useContext, useEffect, useMemo, useState, type ReactNode } from 'react';
import { api, ApiError, cookieHint, currentToken, request, setToken, setUnauthorizedHandler, type User } from './api';
import { navigate } from './router';

interface AuthState {
  user: User | null;
  /** true while the first /auth/me (cookie session) is in flight */
  loading: boolean;
  /** Why the user was sent back to sign-in (session ended), shown there once. */
  notice: string | null;
  signIn(login: string, password: string, useCookie: boolean): Promise<void>;
  signOut(everywhere?: boolean): Promise<void>;
  refresh(): Promise<void>;
}

const Ctx = createContext<AuthState | null>(null);

export function useAuth(): AuthState {
  const c = useContext(Ctx);
  if (!c) throw new Error('useAuth outside AuthProvider');
  return c;
}

export function AuthProvider({ children }: { children: ReactNode }) {
  const [user, setUser] = useState<User | null>(null);
  const [loading, setLoading] = useState(cookieHint.get());
  const [notice, setNotice] = useState<string | null>(null);

  const dropSession = useCallback((why: string | null) => {
    setToken(null);
    cookieHint.set(false);
    setUser(null);
    setNotice(why);
    const here = location.pathname + location.search;
    if (location.pathname !== '/sign-in') navigate(`/sign-in${here && here !== '/' ? `?next=${encodeURIComponent(here)}` : ''}`, { replace: true });
  }, []);

  useEffect(() => {
    // A 401 anywhere means the session is gone (expired, revoked, logged out elsewhere).
    setUnauthorizedHandler(() => dropSession('Your session has ended. Please sign in again.'));
    return () => setUnauthorizedHandler(null);
  }, [dropSession]);

  useEffect(() => {
    // A token session lives in this page's memory: a reload or a closed tab loses it, so end it on
    // the server too rather than leave it open until it expires (keepalive outlives the page).
    const end = () => {
      const t = currentToken();
      if (!t) return;
      void fetch('/api/v1/auth/logout', { method: 'POST', keepalive: true, credentials: 'same-origin', headers: { authorization: `Bearer ${t}`, 'x-requested-with': 'accunode-web' } }).catch(() => {});
    };
    addEventListener('pagehide', end);
    return () => removeEventListener('pagehide', end);
  }, []);

  useEffect(() => {
    // Only a cookie session survives a reload (the token lives in memory); ask the API only when
    // this device signed in with the cookie, so a signed-out visit makes no failing request.
    if (!cookieHint.get()) return;
    request<User>('GET', '/auth/me', { quiet401: true })
      .then(setUser)
      .catch(() => cookieHint.set(false))
      .finally(() => setLoading(false));
  }, []);

  const value = useMemo<AuthState>(
    () => ({
      user,
      loading,
      notice,
      async signIn(login, password, useCookie) {
        if (useCookie) {
          const r = await request<{ user: User }>('POST', '/auth/login', { body: { login, password }, query: { cookie: true }, quiet401: true });
          setToken(null);
          cookieHint.set(true);
          setUser(r.user);
        } else {
          const r = await request<{ token: string; user: User }>('POST', '/auth/login', { body: { login, password }, quiet401: true });
          setToken(r.token);
          cookieHint.set(false);
          setUser(r.user);
        }
        setNotice(null);
      },
      async signOut(everywhere = false) {
        try {
          await request('POST', everywhere ? '/auth/logout-all' : '/auth/logout', { quiet401: true });
        } catch (err) {
          if (!(err instanceof ApiError) || err.status !== 401) throw err;
        }
        dropSession(everywhere ? 'You have been signed out on every device.' : 'You have signed out.');
      },
      async refresh() {
        setUser(await api.get<User>('/auth/me'));
      },
    }),
    [user, loading, notice, dropSession],
  );
  return <Ctx.Provider value={value}>{children}</Ctx.Provider>;
}
