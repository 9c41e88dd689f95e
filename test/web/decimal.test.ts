// The new-prediction form reads numbers in the user's notation or refuses them: "12,5" is
// never 125 (issue 17). Pure logic of web/src/validate.ts and the bulk errors' display.
import path from 'node:path';
import { describe, expect, it } from 'vitest';
import { ANNUAL_FIELDS, type FieldMeta } from '../../src/risk/fields.js';

// The web app is its own TypeScript project (DOM, JSX, bundler resolution): its modules are
// loaded by path, so the server's tsc never compiles them, and typed here by hand.
type Check = { value: number | null; error?: string; warning?: string };
const load = (file: string) => import(/* @vite-ignore */ path.resolve('web/src', file));
const { checkRatio, parseDecimal, separatorsOf } = (await load('validate.ts')) as {
  checkRatio(meta: FieldMeta, raw: string, locale?: string): Check;
  parseDecimal(raw: string, locale?: string): { value: number } | { error: string };
  separatorsOf(locale?: string): { decimal: string; group: string };
};
const { shownCell } = (await load('pages/Bulk.tsx')) as { shownCell(column: string | undefined, cell: string): string };

const roa = ANNUAL_FIELDS.find((f) => f.name === 'return_on_assets')!;
const value = (raw: string, locale: string) => {
  const r = parseDecimal(raw, locale);
  return 'value' in r ? r.value : 'refused';
};

describe('parseDecimal', () => {
  it('knows the separators of a locale', () => {
    expect(separatorsOf('en-US')).toEqual({ decimal: '.', group: ',' });
    expect(separatorsOf('de-DE')).toEqual({ decimal: ',', group: '.' });
  });

  it('reads a comma as the decimal mark where the locale says so, and refuses it where it would group', () => {
    expect(value('12,5', 'de-DE')).toBe(12.5);
    expect(value('12,5', 'fr-FR')).toBe(12.5);
    expect(value('12,5', 'en-US')).toBe('refused');
    expect(value('-0,75', 'de-DE')).toBe(-0.75);
  });

  it('never turns a decimal into a multiple of ten', () => {
    for (const locale of ['en-US', 'en-GB', 'de-DE', 'fr-FR', 'de-CH', 'hi-IN']) {
      for (const raw of ['12,5', '12.5', '1,5', '0,25']) {
        const v = value(raw, locale);
        expect(v === 'refused' || v === Number(raw.replace(',', '.')), `${raw} in ${locale} gave ${v}`).toBe(true);
      }
    }
  });

  it('accepts thousands groups of three digits in either notation, refuses broken ones', () => {
    expect(value('1,234.5', 'en-US')).toBe(1234.5);
    expect(value('1.234,5', 'de-DE')).toBe(1234.5);
    expect(value('1 234,5', 'fr-FR')).toBe(1234.5);
    expect(value('1\u202f234,5', 'fr-FR')).toBe(1234.5);
    expect(value('1,234', 'en-US')).toBe(1234);
    expect(value('1.234', 'de-DE')).toBe(1234);
    expect(value('12,34.5', 'en-US')).toBe('refused');
    expect(value('1.2.3', 'en-US')).toBe('refused');
    expect(value('1,2,3', 'de-DE')).toBe('refused');
  });

  it('takes a point as a decimal in a comma locale when it cannot be a thousands group (spreadsheet habit)', () => {
    expect(value('12.5', 'de-DE')).toBe(12.5);
    expect(value('−3.5', 'en-US')).toBe(-3.5);
  });

  it('the ratio check says what to type', () => {
    expect(checkRatio(roa, '12,5', 'en-US')).toEqual({ value: null, error: expect.stringContaining('write decimals with "." (12.5)') });
    expect(checkRatio(roa, '12,5', 'de-DE')).toEqual({ value: 12.5 });
    expect(checkRatio(roa, '', 'en-US')).toEqual({ value: null });
    expect(checkRatio(roa, 'abc', 'en-US').error).toBe('must be a number (or left empty when not reported)');
    expect(checkRatio(roa, '125000', 'en-US').error).toBe('is too large: it must be between -10,000 and 10,000 (got 125000)');
  });
});

describe('bulk errors on screen', () => {
  it('shows values as they were in the file, without the CSV formula guard', () => {
    expect(shownCell('value', "'=SUM(A1)")).toBe('=SUM(A1)');
    expect(shownCell('value', "'-5x")).toBe('-5x');
    expect(shownCell('value', "it's")).toBe("it's");
    expect(shownCell('kind', 'superseded')).toBe('replaced by a later row');
  });
});
