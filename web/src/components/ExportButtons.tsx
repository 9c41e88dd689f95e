import { useState } from 'react';
import { ApiError, fetchFile } from '../api';
import { download } from '../csv';

type Query = Record<string, string | number | boolean | null | undefined>;

/**
 * "Download CSV" / "Download Excel" for the list on screen: the same filters, every matching row
 * (not only the page shown), in the bulk upload's columns.
 */
export function ExportButtons({ path, query, what }: { path: string; query: Query; what: string }) {
  const [busy, setBusy] = useState<null | 'csv' | 'xlsx'>(null);
  const [error, setError] = useState<string | null>(null);
  const get = async (format: 'csv' | 'xlsx') => {
    setBusy(format);
    setError(null);
    try {
      const { blob, name } = await fetchFile(path, { ...query, format });
      download(name, blob);
    } catch (e) {
      setError(e instanceof ApiError ? e.message : 'The download failed. Please try again.');
    } finally {
      setBusy(null);
    }
  };
  return (
    <div className="export-buttons" role="group" aria-label={`Download ${what}`}>
      <button type="button" className="secondary small" onClick={() => void get('csv')} disabled={busy !== null} aria-label={`Download ${what} as CSV`}>
        {busy === 'csv' ? 'Preparing…' : 'CSV'}
      </button>
      <button type="button" className="secondary small" onClick={() => void get('xlsx')} disabled={busy !== null} aria-label={`Download ${what} as Excel`}>
        {busy === 'xlsx' ? 'Preparing…' : 'Excel'}
      </button>
      {error && (
        <span className="error-text" role="alert">
          {error}
        </span>
      )}
    </div>
  );
}
