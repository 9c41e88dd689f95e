// The spec's Redis key patterns, in one place.
export const keys = {
  session: (tokenHash: string) => `session:${tokenHash}`,
  rateLimitPrefix: 'rate_limit:',
  rateLimit: (subject: string, endpoint: string) => `rate_limit:${subject}:${endpoint}`,
  prediction: (id: string) => `cache:prediction:${id}`,
  company: (id: string) => `cache:company:${id}`,
  user: (id: string) => `cache:user:${id}`,
  analytics: (period: string, date: string, scope: string) => `analytics:stats:${period}:${date}:${scope}`,
};

/** Generation counters behind analytics:stats keys (see AnalyticsService). */
export const analyticsGen = {
  all: 'analytics:gen:all',
  system: 'analytics:gen:system',
  org: (id: string) => `analytics:gen:org:${id}`,
  user: (id: string) => `analytics:gen:user:${id}`,
};

/** The generation keys a write to a row of this scope makes stale. */
export function analyticsGensFor(row: { access_level: string; organization_id: string | null; created_by: string | null }): string[] {
  const out = [analyticsGen.all];
  if (row.access_level === 'system') out.push(analyticsGen.system);
  else if (row.access_level === 'organization' && row.organization_id) out.push(analyticsGen.org(row.organization_id));
  else if (row.created_by) out.push(analyticsGen.user(row.created_by));
  return out;
}

export const TTL = {
  session: 86_400,
  rateLimit: 3_600,
  prediction: 1_800,
  company: 3_600,
  user: 900,
  analytics: 21_600,
} as const;
