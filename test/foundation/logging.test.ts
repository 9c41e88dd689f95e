// `npm start` at a terminal prints readable lines (pino-pretty), JSON otherwise or without it.
import { Writable } from 'node:stream';
import { describe, expect, it } from 'vitest';
import { createLogger, prettyStream } from '../../src/logging.js';

describe('log format', () => {
  it('is JSON when stdout is not a terminal', () => {
    expect(prettyStream(false)).toBeNull();
  });

  it('is JSON when pino-pretty is not installed (npm ci --omit=dev)', () => {
    expect(prettyStream(true, () => { throw Object.assign(new Error("Cannot find module 'pino-pretty'"), { code: 'MODULE_NOT_FOUND' }); })).toBeNull();
  });

  it('is readable at a terminal with pino-pretty installed, secrets still redacted', async () => {
    const chunks: string[] = [];
    const sink = new Writable({ write(c, _e, cb) { chunks.push(String(c)); cb(); } });
    const { default: pretty } = await import('pino-pretty');
    const log = createLogger('info', 'accunode', pretty({ colorize: false, sync: true, destination: sink as never }));
    log.info({ password: 'hunter2', port: 8000 }, 'api listening');
    const out = chunks.join('');
    expect(out).toMatch(/INFO.*api listening/);
    expect(out).not.toMatch(/^\{/);
    expect(out).not.toContain('hunter2');
    // The real factory returns a stream when a TTY and the package are there.
    expect(prettyStream(true)).not.toBeNull();
  });
});
