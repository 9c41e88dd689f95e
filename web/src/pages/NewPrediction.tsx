import { useMemo, useState, type FormEvent } from 'react';
import { api, ApiError, type Kind, type Prediction } from '../api';
import { useAuth } from '../auth';
import { PredictionResult } from '../components/PredictionResult';
import { PageTitle } from '../components/ui';
import { useLocation } from '../router';
import { scopeLabel } from '../scope';
import { checkRatio, checkSymbol, checkText, checkYear, fieldsOf } from '../validate';

type Form = Record<string, string>;

export function NewPrediction() {
  const { search } = useLocation();
  const { user } = useAuth();
  const [kind, setKind] = useState<Kind>(search.get('type') === 'quarterly' ? 'quarterly' : 'annual');
  const blank = (): Form => ({
    symbol: '',
    name: '',
    sector: '',
    reporting_year: String(new Date().getFullYear() - 1),
    reporting_quarter: 'Q4',
    access_level: '',
  });
  const [form, setForm] = useState<Form>(() => ({ ...blank(), symbol: search.get('symbol') ?? '', name: search.get('name') ?? '' }));
  const [touched, setTouched] = useState<Record<string, boolean>>({});
  const [submitted, setSubmitted] = useState(false);
  const [busy, setBusy] = useState(false);
  const [result, setResult] = useState<Prediction | null>(null);
  const [serverError, setServerError] = useState<string | null>(null);
  const [serverFieldErrors, setServerFieldErrors] = useState<Record<string, string>>({});
  const [conflict, setConflict] = useState(false);
  const [choice, setChoice] = useState<{ candidates: Array<{ id: string; symbol: string; name: string; access_level: string; organization_id: string | null; created_by: string | null; can_add_predictions: boolean }>; scope: string } | null>(null);
  const fields = fieldsOf(kind);

  const checks = useMemo(() => {
    const errs: Record<string, string | undefined> = {
      symbol: checkSymbol(form.symbol ?? ''),
      name: checkText(form.name ?? '', 255, true),
      sector: checkText(form.sector ?? '', 100, false),
      reporting_year: checkYear(form.reporting_year ?? ''),
    };
    const ratios: Record<string, ReturnType<typeof checkRatio>> = {};
    for (const f of fields) ratios[f.name] = checkRatio(f, form[f.name] ?? '');
    return { errs, ratios };
  }, [form, fields]);

  const errorOf = (name: string) => serverFieldErrors[name] ?? ((touched[name] || submitted) ? (checks.errs[name] ?? checks.ratios[name]?.error) : undefined);
  const set = (name: string, v: string) => {
    setForm((f) => ({ ...f, [name]: v }));
    setServerFieldErrors((e) => {
      const n = { ...e };
      delete n[name];
      delete n[`company.${name}`];
      return n;
    });
  };
  const blur = (name: string) => setTouched((t) => ({ ...t, [name]: true }));

  async function submit(e: FormEvent, upsert = false, company?: { company_id: string } | { new_company: true }) {
    e.preventDefault();
    setSubmitted(true);
    setServerError(null);
    setConflict(false);
    setChoice(null);
    const invalid = Object.entries(checks.errs).find(([, v]) => v) ?? Object.entries(checks.ratios).find(([, v]) => v.error);
    if (invalid) {
      document.getElementById(`f-${invalid[0]}`)?.focus();
      return;
    }
    const body: Record<string, unknown> = {
      company: { symbol: form.symbol!.trim().toUpperCase(), name: form.name!.trim(), ...(form.sector?.trim() ? { sector: form.sector.trim() } : {}) },
      reporting_year: form.reporting_year!.trim(),
      ...(kind === 'quarterly' ? { reporting_quarter: form.reporting_quarter } : {}),
      ...(form.access_level ? { access_level: form.access_level } : {}),
    };
    // The user's answer to "which company?": an existing one by id, or a separate new one.
    if (company && 'company_id' in company) {
      delete body.company;
      delete body.access_level;
      body.company_id = company.company_id;
    } else if (company) body.new_company = true;
    for (const f of fields) body[f.name] = checks.ratios[f.name]!.value;
    setBusy(true);
    try {
      const p = await api.post<Prediction>(`/predictions/${kind}`, body, { explain: true, ...(upsert ? { upsert: true } : {}) });
      setResult(p);
      // The next company starts from an empty form: nothing of this one (its sector above all)
      // may be stored with the next.
      setForm(blank());
      setTouched({});
      setSubmitted(false);
      setTimeout(() => document.getElementById('result-title')?.focus(), 0);
    } catch (err) {
      setResult(null);
      if (err instanceof ApiError) {
        const d = err.details as { reason?: string; candidates?: NonNullable<typeof choice>['candidates']; new_company_scope?: string } | undefined;
        if (err.status === 409 && d?.reason === 'company_choice_required') setChoice({ candidates: d.candidates ?? [], scope: d.new_company_scope ?? 'personal' });
        else if (err.status === 409) setConflict(true);
        const fe = err.fieldErrors();
        const mapped: Record<string, string> = {};
        for (const [k, v] of Object.entries(fe)) mapped[k.replace(/^company\./, '')] = v;
        setServerFieldErrors(mapped);
        // Field errors are shown at their fields in the form's words; the summary says where to look.
        const onForm = Object.keys(mapped).filter((k) => document.getElementById(`f-${k}`));
        if (err.status === 409 && d?.reason === 'company_choice_required') {
          const n = d.candidates?.length ?? 0;
          setServerError(`You can already see ${n === 1 ? 'a company' : `${n} companies`} with the symbol ${form.symbol?.trim().toUpperCase()}.`);
        } else setServerError(onForm.length > 0 && !/^Too few ratios/.test(err.message) ? 'Please correct the highlighted fields.' : err.message);
        if (onForm[0]) document.getElementById(`f-${onForm[0]}`)?.focus();
      } else setServerError('Could not create the prediction.');
    } finally {
      setBusy(false);
    }
  }

  const input = (name: string, label: string, opts: { help?: string; required?: boolean; placeholder?: string; inputMode?: 'decimal' | 'numeric' | 'text'; autoCap?: boolean } = {}) => {
    const err = errorOf(name);
    const helpId = opts.help ? `h-${name}` : undefined;
    const errId = err ? `e-${name}` : undefined;
    return (
      <div className={`field ${err ? 'has-error' : ''}`}>
        <label htmlFor={`f-${name}`}>
          {label}
          {opts.required && <span aria-hidden="true"> *</span>}
        </label>
        <input
          id={`f-${name}`}
          name={name}
          value={form[name] ?? ''}
          onChange={(e) => set(name, opts.autoCap ? e.target.value.toUpperCase() : e.target.value)}
          onBlur={() => blur(name)}
          aria-invalid={err ? true : undefined}
          aria-describedby={[helpId, errId].filter(Boolean).join(' ') || undefined}
          aria-required={opts.required || undefined}
          inputMode={opts.inputMode}
          placeholder={opts.placeholder}
          autoComplete="off"
        />
        {opts.help && (
          <p id={helpId} className="help">
            {opts.help}
          </p>
        )}
        {err && (
          <p id={errId} className="field-error">
            {label}: {err}
          </p>
        )}
      </div>
    );
  };

  return (
    <main id="main" className="page">
      <PageTitle sub="Enter a company's financial ratios; the models answer at once with the probability of default and what drove it.">New prediction</PageTitle>
      <form className="card" onSubmit={(e) => void submit(e)} noValidate aria-label="New prediction">
        <fieldset className="segmented">
          <legend>Model</legend>
          {(['annual', 'quarterly'] as const).map((k) => (
            <label key={k} className={kind === k ? 'on' : ''}>
              <input type="radio" name="kind" value={k} checked={kind === k} onChange={() => { setKind(k); setResult(null); setServerFieldErrors({}); }} />
              {k === 'annual' ? 'Annual (5 ratios)' : 'Quarterly (6 ratios)'}
            </label>
          ))}
        </fieldset>
        <h2 className="section">Company and period</h2>
        <div className="grid3">
          {input('symbol', 'Symbol', { required: true, help: 'Ticker, 1–10 letters, digits, "." or "-". A company you can already see with this symbol is reused.', autoCap: true })}
          {input('name', 'Company name', { required: true })}
          {input('sector', 'Sector', { placeholder: 'e.g. Industrials' })}
          {input('reporting_year', 'Reporting year', { required: true, inputMode: 'numeric', help: `${1900}–${2100}` })}
          {kind === 'quarterly' && (
            <div className="field">
              <label htmlFor="f-reporting_quarter">Quarter</label>
              <select id="f-reporting_quarter" value={form.reporting_quarter} onChange={(e) => set('reporting_quarter', e.target.value)}>
                {['Q1', 'Q2', 'Q3', 'Q4'].map((q) => (
                  <option key={q}>{q}</option>
                ))}
              </select>
            </div>
          )}
          <div className="field">
            <label htmlFor="f-access_level">Visible to</label>
            <select id="f-access_level" value={form.access_level} onChange={(e) => set('access_level', e.target.value)} aria-describedby="h-access">
              <option value="">Default for my role</option>
              <option value="personal">Only me</option>
              {user?.organization_id && <option value="organization">My organization</option>}
              {user?.role === 'super_admin' && <option value="system">Everyone (system)</option>}
            </select>
            <p id="h-access" className="help">A company you already see with this symbol is used (it keeps its own scope); before a second one is created you are asked.</p>
          </div>
        </div>
        <h2 className="section">Ratios</h2>
        <p className="muted small">Leave a ratio empty when it is not reported: the models treat it as missing. Percentages are in percent units (25.5 means 25.5 %).</p>
        <div className="grid2">
          {fields.map((f) => {
            const c = checks.ratios[f.name];
            const err = errorOf(f.name);
            const id = `f-${f.name}`;
            return (
              <div key={f.name} className={`field ratio ${err ? 'has-error' : ''}`}>
                <label htmlFor={id}>
                  {f.label} <span className="unit">({f.unit === '%' ? 'percent' : 'times, ×'})</span>
                </label>
                <div className="with-unit">
                  <input
                    id={id}
                    name={f.name}
                    inputMode="decimal"
                    value={form[f.name] ?? ''}
                    onChange={(e) => set(f.name, e.target.value)}
                    onBlur={() => blur(f.name)}
                    aria-invalid={err ? true : undefined}
                    aria-describedby={`h-${f.name}${err ? ` e-${f.name}` : ''}${c?.warning ? ` w-${f.name}` : ''}`}
                    placeholder={`${f.typicalRange[0]} to ${f.typicalRange[1]}`}
                    autoComplete="off"
                  />
                  <span className="suffix" aria-hidden="true">
                    {f.unit === '%' ? '%' : '×'}
                  </span>
                </div>
                <p id={`h-${f.name}`} className="help">
                  Typical {f.typicalRange[0]} to {f.typicalRange[1]}
                  {f.unit === '%' ? ' %' : '×'}; {f.risk === 'increasing' ? 'higher means riskier' : 'lower means riskier'}. {f.description}
                </p>
                {err && (
                  <p id={`e-${f.name}`} className="field-error">
                    {f.label}: {err}
                  </p>
                )}
                {!err && c?.warning && (
                  <p id={`w-${f.name}`} className="field-warning">
                    {c.warning}
                  </p>
                )}
              </div>
            );
          })}
        </div>
        {serverError && (
          <div className="notice error" role="alert">
            <p>{serverError}</p>
            {conflict && (
              <button type="button" className="secondary" onClick={(e) => void submit(e, true)}>
                Replace the existing prediction for this period
              </button>
            )}
            {choice && (
              <div role="group" aria-label="Which company?" data-testid="company-choice">
                <p>Which company is this prediction for?</p>
                <ul className="plain">
                  {choice.candidates.map((c) => (
                    <li key={c.id}>
                      {c.can_add_predictions ? (
                        <button type="button" className="secondary" onClick={(e) => void submit(e, false, { company_id: c.id })}>
                          Add to {c.symbol} · {c.name} (visible to {scopeLabel(c, user).toLowerCase()})
                        </button>
                      ) : (
                        <span className="small">
                          {c.symbol} · {c.name} (visible to {scopeLabel(c, user).toLowerCase()}): you cannot add predictions to it.
                        </span>
                      )}
                    </li>
                  ))}
                  <li>
                    <button type="button" className="secondary" onClick={(e) => void submit(e, false, { new_company: true })}>
                      Create a separate {form.symbol?.trim().toUpperCase()} visible to {choice.scope === 'personal' ? 'only me' : choice.scope === 'organization' ? 'my organization' : 'everyone'}
                    </button>
                  </li>
                </ul>
              </div>
            )}
          </div>
        )}
        {submitted && Object.values(checks.errs).some(Boolean) || (submitted && Object.values(checks.ratios).some((r) => r.error)) ? (
          <p className="notice error" role="alert">
            Please correct the highlighted fields.
          </p>
        ) : null}
        <div className="actions">
          <button type="submit" disabled={busy}>
            {busy ? 'Predicting…' : 'Predict'}
          </button>
        </div>
      </form>
      {result && <PredictionResult p={result} />}
    </main>
  );
}
