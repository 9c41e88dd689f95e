import { describe, expect, it } from 'vitest';
import { KeyLines } from '../../src/services/bulk/key-lines.js';

describe('KeyLines (the last line per key across a bulk file)', () => {
  it('returns the line a key replaces, across growth of the table, like a Map would', () => {
    const k = new KeyLines();
    const m = new Map<string, number>();
    // 50,000 keys (the table grows six times), each seen up to three times.
    for (let line = 1; line <= 120_000; line++) {
      const key = `SYM${(line * 7919) % 50_000}\u00002024`;
      expect(k.set(key, line)).toBe(m.get(key));
      m.set(key, line);
    }
    expect(k.size).toBe(m.size);
  });

  it('keeps keys that differ only in the period apart', () => {
    const k = new KeyLines();
    expect(k.set('AAPL\u00002023', 1)).toBeUndefined();
    expect(k.set('AAPL\u00002024', 2)).toBeUndefined();
    expect(k.set('AAPL\u00002023\u0000Q1', 3)).toBeUndefined();
    expect(k.set('AAPL\u00002023', 4)).toBe(1);
  });
});
