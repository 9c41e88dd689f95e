import { createRequire } from 'node:module';
import { pino, type DestinationStream, type Logger } from 'pino';

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

/**
 * Readable lines for a person at a terminal: pino-pretty when stdout is a TTY and the package is
 * installed (a devDependency: `npm ci` has it, `npm ci --omit=dev` does not), else null and the
 * logger writes JSON lines, which is what log collectors read.
 */
export function prettyStream(isTty: boolean = process.stdout.isTTY === true, load: (id: string) => unknown = createRequire(import.meta.url)): DestinationStream | null {
  if (!isTty) return null;
  try {
    const pretty = load('pino-pretty') as (o: Record<string, unknown>) => DestinationStream;
    // sync: a line is on the terminal before the process can exit (Ctrl-C, a failed start).
    return pretty({ colorize: true, sync: true, translateTime: 'SYS:HH:MM:ss.l', ignore: 'pid,hostname' });
  } catch {
    return null;
  }
}

export function createLogger(level: string, name = 'accunode', stream: DestinationStream | null = prettyStream()): Logger {
  const opts = {
    name,
    level,
    redact: { paths: REDACT_PATHS, censor: '[redacted]' },
    base: { pid: process.pid },
    timestamp: pino.stdTimeFunctions.isoTime,
  };
  return stream ? pino(opts, stream) : pino(opts);
}

export type { Logger };
