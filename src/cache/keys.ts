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

export const TTL = {
  session: 86_400,
  rateLimit: 3_600,
  prediction: 1_800,
  company: 3_600,
  user: 900,
  analytics: 21_600,
} as const;
