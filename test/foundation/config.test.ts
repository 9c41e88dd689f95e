import { mkdtempSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { Writable } from 'node:stream';
import { pino } from 'pino';
import { describe, expect, it } from 'vitest';
import { ConfigError, loadConfig, describeConfig, SECRET_VARIABLES } from '../../src/config/index.js';
import { REDACT_PATHS, redactUrl } from '../../src/logging.js';

describe('config', () => {
  it('has defaults for everything optional', () => {
    const c = loadConfig({});
    expect(c.PORT).toBe(8000);
    expect(c.HOST).toBe('127.0.0.1');
    expect(c.dataDir).toBe(path.resolve('./.accunode'));
    expect(c.backupDir).toBe(path.join(c.dataDir, 'backups'));
    expect(c.RISK_THRESHOLDS).toEqual([0.02, 0.05, 0.15]);
    expect(c.DATABASE_READ_URLS).toEqual([]);
    expect(c.TRUST_PROXY).toBe(false);
    expect(Object.isFrozen(c)).toBe(true);
  });

  it.each([
    [{ PORT: 'eighty' }, 'PORT', /must be an integer/],
    [{ PORT: '70000' }, 'PORT', /between 0 and 65535/],
    [{ DATABASE_URL: 'mysql://x' }, 'DATABASE_URL', /must use postgres/],
    [{ DATABASE_URL: 'not a url' }, 'DATABASE_URL', /not a valid URL/],
    [{ REDIS_URL: 'http://x' }, 'REDIS_URL', /must use redis/],
    [{ LOG_LEVEL: 'loud' }, 'LOG_LEVEL', /must be one of/],
    [{ RISK_THRESHOLDS: '0.5,0.2,0.1' }, 'RISK_THRESHOLDS', /increasing/],
    [{ DATABASE_PREPARE: 'maybe' }, 'DATABASE_PREPARE', /true or false/],
    [{ DATABASE_READ_URLS: 'postgres://a/b, nope' }, 'DATABASE_READ_URLS', /not a valid URL/],
    [{ TRUST_PROXY: 'evil.example.com' }, 'TRUST_PROXY', /addresses or CIDR/],
    [{ SESSION_TTL_SECONDS: '86400', SESSION_ABSOLUTE_TTL_SECONDS: '3600' }, 'SESSION_ABSOLUTE_TTL_SECONDS', /at least/],
  ])('rejects %o naming %s', (env, variable, message) => {
    let err: unknown;
    try {
      loadConfig(env);
    } catch (e) {
      err = e;
    }
    expect(err).toBeInstanceOf(ConfigError);
    expect((err as ConfigError).variable).toBe(variable);
    expect((err as Error).message).toMatch(new RegExp(`^Configuration error: ${variable} `));
    expect((err as Error).message).toMatch(message);
  });

  it('never echoes a secret value in its error', () => {
    expect(() => loadConfig({ DATABASE_URL: 'postgres://u:hunter2@[bad' })).toThrow(/DATABASE_URL/);
    try {
      loadConfig({ DATABASE_URL: 'postgres://u:hunter2@[bad' });
    } catch (e) {
      expect((e as Error).message).not.toContain('hunter2');
    }
  });

  it('reads secrets from NAME_FILE', () => {
    const dir = mkdtempSync(path.join(os.tmpdir(), 'accunode-cfg-'));
    const f = path.join(dir, 'db');
    writeFileSync(f, 'postgres://app_user:s3cret@db:5432/accunode\n');
    expect(loadConfig({ DATABASE_URL_FILE: f }).DATABASE_URL).toBe('postgres://app_user:s3cret@db:5432/accunode');
    expect(() => loadConfig({ DATABASE_URL_FILE: path.join(dir, 'missing') })).toThrow(/DATABASE_URL_FILE names a file that cannot be read/);
    expect(() => loadConfig({ DATABASE_URL_FILE: f, DATABASE_URL: 'postgres://x/y' })).toThrow(/both set/);
  });

  it('lists every variable with its secrecy', () => {
    const names = describeConfig().map((d) => d.name);
    for (const v of ['PORT', 'HOST', 'ACCUNODE_DATA_DIR', 'DATABASE_URL', 'DATABASE_ADMIN_URL', 'DATABASE_READ_URLS', 'REDIS_URL', 'CACHE_REDIS_URL', 'TRUST_PROXY', 'BACKUP_DIR', 'BACKUP_ENCRYPTION_KEY'])
      expect(names).toContain(v);
    expect(SECRET_VARIABLES).toEqual(expect.arrayContaining(['DATABASE_URL', 'REDIS_URL', 'BACKUP_ENCRYPTION_KEY', 'APP_USER_PASSWORD']));
  });
});

describe('logging', () => {
  it('redacts secrets wherever they appear', () => {
    let out = '';
    const sink = new Writable({ write(chunk, _enc, cb) { out += chunk; cb(); } });
    const log = pino({ redact: { paths: REDACT_PATHS, censor: '[redacted]' } }, sink);
    log.info({ password: 'p1', body: { password: 'p2', token: 't1' }, req: { headers: { authorization: 'Bearer abc' } } }, 'x');
    for (const s of ['p1', 'p2', 't1', 'Bearer abc']) expect(out).not.toContain(s);
    expect(out).toContain('[redacted]');
    expect(redactUrl('postgres://u:hunter2@h:5432/d')).toBe('postgres://u:***@h:5432/d');
  });
});
