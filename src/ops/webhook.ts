// ALARM_WEBHOOK_URL, as the alarms and failover/drill steps call it: one JSON POST, five seconds
// at most, the outcome returned (a webhook that fails never fails the step that called it).
import { errMessage } from './types.js';

export async function postJson(url: string, payload: unknown, fetchImpl: typeof fetch = fetch): Promise<{ ok: boolean; error?: string }> {
  try {
    const res = await fetchImpl(url, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify(payload), signal: AbortSignal.timeout(5000) });
    return res.ok ? { ok: true } : { ok: false, error: `webhook answered ${res.status}` };
  } catch (err) {
    return { ok: false, error: errMessage(err) };
  }
}
