// XLSX inflation is bounded by what is actually inflated, not by what the zip directory says: a
// crafted workbook whose directory declares its shared strings as 2,000 bytes but whose data
// inflates to 4 GB is refused after a bounded number of bytes, at the door and in the reader.
import { writeFileSync } from 'node:fs';
import path from 'node:path';
import zlib from 'node:zlib';
import { describe, expect, it } from 'vitest';
import { checkXlsxFile, DEFAULT_LIMITS, openBulkFile, type OpenedFile } from '../../src/services/bulk/readers.js';
import { columnsOf, sharedStringsBomb, SST_HEAD, tmpDir } from './helpers.js';
import { repeatedDeflate, workbookWithSharedStrings } from '../helpers/zip.js';

const dir = tmpDir('accunode-xlsx-');

async function drain(f: OpenedFile): Promise<number> {
  let n = 0;
  for await (const batch of f.rows) n += batch.length;
  return n;
}

describe('XLSX inflation limits', () => {
  it('a directory that declares 2,000 bytes for shared strings inflating to 4 GB is refused, naming the part, after a bounded number of bytes', async () => {
    const { file, inflatedSize, size } = sharedStringsBomb(dir, 4 * 1024 ** 3);
    expect(inflatedSize).toBeGreaterThan(4 * 1024 ** 3 - 1);
    expect(size).toBeLessThan(16 * 1024 * 1024);
    const heapBefore = process.memoryUsage().heapUsed;
    await expect(checkXlsxFile(file)).rejects.toMatchObject({
      code: 'zip_bomb',
      message: expect.stringMatching(/xl\/sharedStrings\.xml inflates to more than the 2000 bytes its zip directory declares/),
    });
    await expect(openBulkFile(file)).rejects.toMatchObject({ code: 'zip_bomb', message: expect.stringMatching(/sharedStrings\.xml.*2000 bytes/) });
    // The parser never saw more than a chunk past the declared size: nothing like 4 GB was held.
    expect(process.memoryUsage().heapUsed - heapBefore).toBeLessThan(256 * 1024 * 1024);
  });

  it('declared honestly: a part held in memory stops at maxXlsxPartBytes, the whole workbook at the counted inflate ratio', async () => {
    const unit = '<si><t>y</t></si>';
    const times = Math.ceil((64 * 1024 * 1024) / unit.length);
    const honest = repeatedDeflate(SST_HEAD, unit, times, '</sst>');
    const file = path.join(dir, 'big-strings.xlsx');
    writeFileSync(file, workbookWithSharedStrings(columnsOf('annual'), { stored: honest.data, declaredSize: honest.inflatedSize }));
    // Declared honestly at ~1000:1, so the directory check (declared ratio) refuses it first.
    await expect(checkXlsxFile(file)).rejects.toThrow(/compressed \d+:1/);
    // With that check opened up, what is counted while inflating still stops it.
    const loose = { ...DEFAULT_LIMITS, maxXlsxRatio: 1e9 };
    await expect(checkXlsxFile(file, { ...loose, maxXlsxPartBytes: 32 * 1024 * 1024, maxXlsxInflateRatio: 1e6 })).rejects.toThrow(/sharedStrings\.xml unpacks to \d+ bytes, more than the limit of 33554432/);
    await expect(checkXlsxFile(file, { ...loose, maxXlsxInflateRatio: 50 })).rejects.toThrow(/inflates to more than 50 times its size/);
  });

  it('shared strings are cached within a memory budget: a workbook of many strings past it is refused, one within it reads', async () => {
    const header = columnsOf('annual');
    const strings = [...header, ...Array.from({ length: 50_000 }, (_, i) => `company name number ${i}`)];
    const xml = SST_HEAD + strings.map((s) => `<si><t>${s}</t></si>`).join('') + '</sst>';
    const stored = zlib.deflateRawSync(Buffer.from(xml));
    const rows = Array.from({ length: 3 }, (_, r) => `<row r="${r + 2}"><c r="A${r + 2}" t="s"><v>${header.length + r}</v></c></row>`);
    const file = path.join(dir, 'many-strings.xlsx');
    writeFileSync(file, workbookWithSharedStrings(header, { stored, declaredSize: Buffer.byteLength(xml) }, rows));
    await expect(openBulkFile(file, { ...DEFAULT_LIMITS, maxSharedStringsBytes: 1024 * 1024 })).rejects.toThrow(/shared strings take more than 1048576 bytes of memory/);
    const ok = await openBulkFile(file);
    expect(ok.header).toEqual(header);
    expect(await drain(ok)).toBe(3);
  });
});
