import { useCallback, useEffect, useRef, useState, type ReactNode } from 'react';
import { ApiError, type Paged } from '../api';
import { RISK_COLORS } from '../format';

export function RiskBadge({ level }: { level: string | null | undefined }) {
  if (!level) return <span className="muted">–</span>;
  const c = RISK_COLORS[level] ?? { bg: '#e5e7eb', fg: '#111827' };
  return (
    <span className="badge" style={{ background: c.bg, color: c.fg }} aria-label={`risk ${level.toLowerCase()}`}>
      {level}
    </span>
  );
}

export function Loading({ what = 'Loading' }: { what?: string }) {
  return (
    <p className="loading" role="status" aria-live="polite">
      <span className="spinner" aria-hidden="true" /> {what}…
    </p>
  );
}

export function ErrorState({ error, retry }: { error: unknown; retry?: () => void }) {
  const msg = error instanceof ApiError ? (error.status === 403 ? 'You do not have access to this. Ask an administrator if you need it.' : error.message) : 'Something went wrong. Please try again.';
  return (
    <div className="notice error" role="alert">
      <p>{msg}</p>
      {retry && (
        <button type="button" className="secondary" onClick={retry}>
          Try again
        </button>
      )}
    </div>
  );
}

export function Empty({ title, children }: { title: string; children?: ReactNode }) {
  return (
    <div className="empty">
      <p className="empty-title">{title}</p>
      {children && <div className="muted">{children}</div>}
    </div>
  );
}

export function Card({ title, children, actions, id }: { title?: string; children: ReactNode; actions?: ReactNode; id?: string }) {
  return (
    <section className="card" aria-labelledby={title && id ? id : undefined}>
      {(title || actions) && (
        <div className="card-head">
          {title && <h2 id={id}>{title}</h2>}
          {actions}
        </div>
      )}
      {children}
    </section>
  );
}

export function Stat({ label, value, hint }: { label: string; value: ReactNode; hint?: string }) {
  return (
    <div className="stat">
      <div className="stat-label">{label}</div>
      <div className="stat-value">{value}</div>
      {hint && <div className="stat-hint">{hint}</div>}
    </div>
  );
}

/** Loads data for a page; reloads when deps change. */
export function useAsync<T>(fn: () => Promise<T>, deps: unknown[]): { data: T | null; error: unknown; loading: boolean; reload: () => void } {
  const [state, setState] = useState<{ data: T | null; error: unknown; loading: boolean }>({ data: null, error: null, loading: true });
  const [n, setN] = useState(0);
  const fnRef = useRef(fn);
  fnRef.current = fn;
  useEffect(() => {
    let live = true;
    setState((s) => ({ ...s, loading: true, error: null }));
    fnRef.current().then(
      (data) => live && setState({ data, error: null, loading: false }),
      (error) => live && setState({ data: null, error, loading: false }),
    );
    return () => {
      live = false;
    };
  }, [...deps, n]);
  const reload = useCallback(() => setN((x) => x + 1), []);
  return { ...state, reload };
}

export function useDebounced<T>(value: T, ms: number): T {
  const [v, setV] = useState(value);
  useEffect(() => {
    const t = setTimeout(() => setV(value), ms);
    return () => clearTimeout(t);
  }, [value, ms]);
  return v;
}

export function PageTitle({ children, sub }: { children: ReactNode; sub?: ReactNode }) {
  useEffect(() => {
    if (typeof children === 'string') document.title = `${children} · AccuNode`;
  }, [children]);
  return (
    <header className="page-head">
      <h1 tabIndex={-1} id="page-title">
        {children}
      </h1>
      {sub && <p className="muted">{sub}</p>}
    </header>
  );
}

/**
 * Pages of a keyset list: the API hands out the next page's cursor with each page; going back
 * re-reads the cursors kept on a stack. The stack belongs to one set of filters (`key`): when the
 * filters change, paging starts again from the first page (a cursor is bound to its filters).
 */
export function useCursorPages<T>(
  fetchPage: (cursor: string | undefined) => Promise<Paged<T>>,
  deps: unknown[],
  /** A page to open first (a cursor from the URL); Previous from it goes to the first page. */
  initialCursor?: string,
): { data: Paged<T> | null; error: unknown; loading: boolean; reload: () => void; index: number; cursor: string | undefined; next: () => void; prev: () => void } {
  const key = JSON.stringify(deps);
  const [state, setState] = useState<{ key: string; stack: Array<string | undefined> }>({ key, stack: initialCursor ? [undefined, initialCursor] : [undefined] });
  const stack = state.key === key ? state.stack : [undefined];
  const cursor = stack[stack.length - 1];
  const r = useAsync(() => fetchPage(cursor), [key, cursor]);
  return {
    ...r,
    index: stack.length - 1,
    cursor,
    next: () => {
      if (r.data?.next_cursor) setState({ key, stack: [...stack, r.data.next_cursor] });
    },
    prev: () => {
      if (stack.length > 1) setState({ key, stack: stack.slice(0, -1) });
    },
  };
}

/**
 * A keyset list read a page at a time and kept: `items` grows with each `more()` (for lists an
 * administrator scrolls rather than pages: members, organizations). Starts again when deps change.
 */
export function useCursorList<T>(
  fetchPage: (cursor: string | undefined) => Promise<Paged<T>>,
  deps: unknown[],
): { items: T[] | null; error: unknown; loading: boolean; reload: () => void; more: (() => void) | null; total: Paged<T> | null } {
  const [pages, setPages] = useState<Array<Paged<T>>>([]);
  const [cursor, setCursor] = useState<string | undefined>(undefined);
  const r = useAsync(async () => {
    const page = await fetchPage(cursor);
    setPages((ps) => (cursor === undefined ? [page] : [...ps, page]));
    return page;
  }, [...deps, cursor]);
  const last = pages[pages.length - 1] ?? null;
  return {
    items: pages.length ? pages.flatMap((p) => p.items) : null,
    error: r.error,
    loading: r.loading,
    reload: () => {
      if (cursor === undefined) r.reload();
      else setCursor(undefined);
    },
    more: last?.next_cursor ? () => setCursor(last.next_cursor!) : null,
    total: pages[0] ?? null,
  };
}

/** How a page's total reads: exact, or "1,000 or more" when the API stopped counting. */
function totalText(total: number, relation: 'eq' | 'gte'): string {
  return relation === 'gte' ? `${total.toLocaleString('en-US')} or more` : total.toLocaleString('en-US');
}

export function Pager({ page, index, onPrev, onNext }: { page: Paged<unknown>; index: number; onPrev: () => void; onNext: () => void }) {
  const first = index === 0;
  if (first && page.next_cursor === null) {
    return <p className="muted small">{totalText(page.total, page.total_relation)} {page.total === 1 && page.total_relation === 'eq' ? 'result' : 'results'}</p>;
  }
  const from = index * page.limit + 1;
  const to = index * page.limit + page.items.length;
  const beyond = page.total_relation === 'gte' && to > page.total;
  return (
    <nav className="pager" aria-label="Pages">
      <button type="button" className="secondary" disabled={first} onClick={onPrev}>
        ← Previous
      </button>
      <span aria-live="polite">
        {from.toLocaleString('en-US')}–{to.toLocaleString('en-US')}
        {beyond ? '' : ` of ${totalText(page.total, page.total_relation)}`}
      </span>
      <button type="button" className="secondary" disabled={page.next_cursor === null} onClick={onNext}>
        Next →
      </button>
    </nav>
  );
}

/**
 * A table that may scroll sideways on a narrow screen. When it does, it is a named region the
 * keyboard can reach and scroll (arrow keys); when it fits, it adds no tab stop.
 */
export function TableWrap({ label, busy, children }: { label: string; busy?: boolean; children: ReactNode }) {
  const ref = useRef<HTMLDivElement>(null);
  const [scrolls, setScrolls] = useState(false);
  useEffect(() => {
    const el = ref.current;
    if (!el) return;
    const check = () => setScrolls(el.scrollWidth > el.clientWidth + 1);
    check();
    const ro = new ResizeObserver(check);
    ro.observe(el);
    if (el.firstElementChild) ro.observe(el.firstElementChild);
    return () => ro.disconnect();
  }, []);
  return (
    <div ref={ref} className="table-wrap" aria-busy={busy} {...(scrolls ? { role: 'region', 'aria-label': label, tabIndex: 0 } : {})}>
      {children}
    </div>
  );
}
