import { useEffect, useRef, useState } from 'react';
import { roleAtLeast } from './api';
import { useAuth } from './auth';
import { Empty, Loading } from './components/ui';
import { Admin } from './pages/Admin';
import { Alerts, useUnreadAlerts } from './pages/Alerts';
import { Bulk } from './pages/Bulk';
import { SymbolPage } from './pages/Symbol';
import { CompanyPage } from './pages/Company';
import { Dashboard } from './pages/Dashboard';
import { NewPrediction } from './pages/NewPrediction';
import { Operations } from './pages/Operations';
import { Portfolio } from './pages/Portfolio';
import { SignIn } from './pages/SignIn';
import { VerificationBanner, VerifyEmail } from './pages/VerifyEmail';
import { Link, match, navigate, useLocation } from './router';

const NAV: Array<{ to: string; label: string; min?: 'org_admin' | 'tenant_admin' }> = [
  { to: '/', label: 'Dashboard' },
  { to: '/portfolio', label: 'Portfolio' },
  { to: '/predict', label: 'New prediction' },
  { to: '/bulk', label: 'Bulk upload' },
  { to: '/alerts', label: 'Alerts' },
  { to: '/ops', label: 'Operations', min: 'tenant_admin' },
  { to: '/admin', label: 'Administration' },
];

function Page({ path }: { path: string }) {
  const { user } = useAuth();
  if (path === '/') return <Dashboard />;
  if (path === '/portfolio') return <Portfolio />;
  if (path === '/predict') return <NewPrediction />;
  if (path === '/bulk') return <Bulk />;
  if (path === '/admin') return <Admin />;
  if (path === '/alerts') return <Alerts />;
  if (path === '/ops')
    return roleAtLeast(user?.role, 'tenant_admin') ? (
      <Operations />
    ) : (
      <main id="main" className="page">
        <Empty title="Operations are for administrators">Ask a tenant administrator if you need these figures.</Empty>
      </main>
    );
  const c = match('/companies/:id', path);
  if (c) return <CompanyPage key={c.id} id={c.id!} />;
  const sym = match('/symbols/:symbol', path);
  if (sym) return <SymbolPage key={sym.symbol} symbol={sym.symbol!} />;
  return (
    <main id="main" className="page">
      <Empty title="Page not found">
        <Link to="/">Go to the dashboard</Link>
      </Empty>
    </main>
  );
}

/** The unread alerts beside "Alerts" (re-read on every navigation: keyed by the path). */
function UnreadBadge() {
  const n = useUnreadAlerts();
  return n > 0 ? <span className="count-badge" aria-label={`${n} unread`}>{n}</span> : null;
}

export function App() {
  const { user, loading, signOut } = useAuth();
  const { path, search } = useLocation();
  // The e-mail link works signed in or not: no redirect to sign-in for it.
  const verifying = path === '/verify-email';
  const [menuOpen, setMenuOpen] = useState(false);
  const first = useRef(true);

  useEffect(() => {
    if (verifying) return;
    if (!loading && !user && path !== '/sign-in') navigate(`/sign-in${path !== '/' ? `?next=${encodeURIComponent(path + location.search)}` : ''}`, { replace: true });
    if (!loading && user && path === '/sign-in') navigate('/', { replace: true });
  }, [loading, user, path, verifying]);

  // Move focus to the page heading on navigation (screen readers announce the new page).
  useEffect(() => {
    setMenuOpen(false);
    if (first.current) {
      first.current = false;
      return;
    }
    const t = setTimeout(() => document.getElementById('page-title')?.focus({ preventScroll: true }), 0);
    return () => clearTimeout(t);
  }, [path]);

  if (loading) return <Loading what="Starting" />;
  if (verifying && !user) return <VerifyEmail token={search.get('token')} />;
  if (!user || path === '/sign-in') return <SignIn />;

  const active = (to: string) => (to === '/' ? path === '/' : path.startsWith(to) || (to === '/portfolio' && path.startsWith('/companies')));
  return (
    <>
      <a className="skip" href="#main">
        Skip to content
      </a>
      <header className="topbar">
        <Link to="/" className="brand" aria-label="AccuNode home">
          <img src="/favicon.svg" alt="" width="24" height="24" /> AccuNode
        </Link>
        <button type="button" className="menu-toggle secondary" aria-expanded={menuOpen} aria-controls="nav" onClick={() => setMenuOpen((o) => !o)}>
          Menu
        </button>
        <nav id="nav" aria-label="Main" className={menuOpen ? 'open' : ''}>
          <ul>
            {NAV.filter((n) => !n.min || roleAtLeast(user.role, n.min)).map((n) => (
              <li key={n.to}>
                <Link to={n.to} aria-current={active(n.to) ? 'page' : undefined}>
                  {n.label}
                  {n.to === '/alerts' && <UnreadBadge key={path} />}
                </Link>
              </li>
            ))}
          </ul>
        </nav>
        <div className="user">
          <span className="small" title={user.email}>
            {user.username} <span className="role">{user.role.replace('_', ' ')}</span>
          </span>
          <button type="button" className="secondary small" onClick={() => void signOut(false)}>
            Sign out
          </button>
        </div>
      </header>
      <VerificationBanner />
      {verifying ? <VerifyEmail token={search.get('token')} /> : <Page path={path} />}
      <footer className="footer muted small">
        Probabilities are model estimates of default within the horizon of each model. <a href="/docs">API documentation</a>
      </footer>
    </>
  );
}
