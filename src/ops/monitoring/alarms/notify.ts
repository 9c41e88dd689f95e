// What the webhook hears of an alarm's transition into or out of ALARM.
import type { OpsDeps } from '../../types.js';
import { postJson } from '../../webhook.js';
import type { AlarmResult } from './definitions.js';

export function notifyWebhook(deps: Pick<OpsDeps, 'fetch'>, url: string, r: AlarmResult, at: Date): Promise<{ ok: boolean; error?: string }> {
  return postJson(
    url,
    {
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
    },
    deps.fetch,
  );
}
