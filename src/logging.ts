import { pino, type Logger } from 'pino';

// Paths pino blanks out wherever they appear in a log object: request headers, bodies and
// config dumps are the usual ways a secret reaches a log.
export const REDACT_PATHS = [
  'password',
  '*.password',
  'new_password',
  '*.new_password',
  'current_password',
  '*.current_password',
  'token',
  '*.token',
  'join_token',
  '*.join_token',
  'password_hash',
  '*.password_hash',
  'req.headers.authorization',
  'req.headers.cookie',
  'headers.authorization',
  'headers.cookie',
  'res.headers["set-cookie"]',
  'config.DATABASE_URL',
  'config.DATABASE_ADMIN_URL',
  'config.REDIS_URL',
  'config.CACHE_REDIS_URL',
  'config.BACKUP_ENCRYPTION_KEY',
];

/** Removes the password from a connection URL so it can be shown to an operator. */
export function redactUrl(raw: string): string {
  try {
    const u = new URL(raw);
    if (u.password) u.password = '***';
    return u.toString();
  } catch {
    return '<invalid url>';
  }
}

export function createLogger(level: string, name = 'accunode'): Logger {
  return pino({
    name,
    level,
    redact: { paths: REDACT_PATHS, censor: '[redacted]' },
    base: { pid: process.pid },
    timestamp: pino.stdTimeFunctions.isoTime,
  });
}

export type { Logger };
