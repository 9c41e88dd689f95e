import { useState } from 'react';
import { api, ApiError } from '../api';
import { useAuth } from '../auth';
import { useAsync } from './ui';

interface Watch { id: string; company_id: string; access_level: 'personal' | 'organization' }

/** Watch this company (for me, or for my organization); alerts then arrive in the Alerts inbox. */
export function WatchButton({ companyId, symbol }: { companyId: string; symbol: string }) {
  const { user } = useAuth();
  const { data, reload } = useAsync(() => api.get<{ items: Watch[] }>('/watches'), [companyId]);
  const [error, setError] = useState<string | null>(null);
  const mine = (data?.items ?? []).filter((w) => w.company_id === companyId);
  const has = (l: Watch['access_level']) => mine.find((w) => w.access_level === l);
  const toggle = async (level: Watch['access_level']) => {
    setError(null);
    try {
      const w = has(level);
      if (w) await api.del(`/watches/${w.id}`);
      else await api.post('/watches', { company_id: companyId, access_level: level });
      reload();
    } catch (e) {
      setError(e instanceof ApiError ? e.message : 'That did not work; please try again.');
    }
  };
  const levels: Array<Watch['access_level']> = user?.organization_id ? ['personal', 'organization'] : ['personal'];
  return (
    <div className="export-buttons" role="group" aria-label={`Watch ${symbol}`}>
      {levels.map((l) => (
        <button key={l} type="button" className="secondary" aria-pressed={!!has(l)} onClick={() => void toggle(l)}>
          {has(l) ? (l === 'personal' ? 'Watching ✓' : 'Organization watching ✓') : l === 'personal' ? 'Watch' : 'Watch for my organization'}
        </button>
      ))}
      {error && (
        <span className="error-text" role="alert">
          {error}
        </span>
      )}
    </div>
  );
}
