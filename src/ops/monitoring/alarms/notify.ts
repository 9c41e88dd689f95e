// ALARM_WEBHOOK_URL: one POST per transition into or out of ALARM, five seconds at most.
import { errMessage, type OpsDeps } from '../../types.js';
import type { AlarmResult } from './definitions.js';

export async function notifyWebhook(deps: Pick<OpsDeps, 'fetch'>, url: string, r: AlarmResult, at: Date): Promise<{ ok: boolean; error?: string }> {
  const f = deps.fetch ?? fetch;
  try {
    const res = await f(url, {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify({
        source: 'accunode',
        alarm: r.name,
        state: r.state,
        previous_state: r.previous_state,
        value: r.value,
        threshold: r.threshold,
        condition: r.condition,
        reason: r.reason,
        at: at.toISOString(),
        text: `${r.name} is ${r.state} (was ${r.previous_state ?? 'unknown'}): ${r.reason}`,
      }),
      signal: AbortSignal.timeout(5000),
    });
    return res.ok ? { ok: true } : { ok: false, error: `HTTP ${res.status}` };
  } catch (err) {
    return { ok: false, error: errMessage(err) };
  }
}
