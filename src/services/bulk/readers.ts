/**
 * Streaming readers for bulk files: CSV (csv-parse) and XLSX (exceljs WorkbookReader). Memory
 * stays bounded whatever the file size, and for XLSX whatever its zip directory declares; hostile
 * files (zip bombs, endless lines, binary data, formulas) end in a BulkFileError with a clear
 * message, never a crashed worker.
 */
import { createReadStream } from 'node:fs';
import { open, stat } from 'node:fs/promises';
import { pipeline, Readable, Transform } from 'node:stream';
import { createInflateRaw } from 'node:zlib';
import { parse } from 'csv-parse';
import ExcelJS from 'exceljs';
import { BulkFileError, FORMULA, type Cell } from './values.js';

export type BulkFormat = 'csv' | 'xlsx';

export interface ReaderLimits {
  /** Longest accepted CSV record (bytes); a longer line ends the file with an error. */
  maxLineBytes: number;
  /** Total uncompressed size of an XLSX, declared and counted while inflating. */
  maxXlsxUncompressedBytes: number;
  /** Largest compression ratio one XLSX part may declare (above 1 MB uncompressed). */
  maxXlsxRatio: number;
  /** Most bytes one XLSX part held in memory (every part but the worksheets) may inflate to. */
  maxXlsxPartBytes: number;
  /** Most bytes a whole XLSX may inflate to per byte of the file, counted (above 16 MB). */
  maxXlsxInflateRatio: number;
  /** Memory budget of an XLSX's cached shared strings (characters plus a per-string overhead). */
  maxSharedStringsBytes: number;
  /** Most data rows accepted in one file. */
  maxRows: number;
}

export const DEFAULT_LIMITS: ReaderLimits = {
  maxLineBytes: 1024 * 1024,
  maxXlsxUncompressedBytes: 1024 * 1024 * 1024,
  maxXlsxRatio: 200,
  maxXlsxPartBytes: 200 * 1024 * 1024,
  maxXlsxInflateRatio: 100,
  maxSharedStringsBytes: 256 * 1024 * 1024,
  maxRows: 5_000_000,
};

/** The limits a deployment configures (BULK_MAX_LINE_BYTES, BULK_XLSX_*); the rest stay default. */
export function configuredLimits(c: { BULK_MAX_LINE_BYTES: number; BULK_XLSX_MAX_PART_BYTES: number; BULK_XLSX_MAX_INFLATE_RATIO: number }): Partial<ReaderLimits> {
  return { maxLineBytes: c.BULK_MAX_LINE_BYTES, maxXlsxPartBytes: c.BULK_XLSX_MAX_PART_BYTES, maxXlsxInflateRatio: c.BULK_XLSX_MAX_INFLATE_RATIO };
}

export interface DataRow {
  /** 1-based line (CSV) or row number (XLSX) in the file, the header being line 1. */
  line: number;
  cells: Cell[];
}

export interface OpenedFile {
  format: BulkFormat;
  header: Cell[];
  /** Data rows in batches (fewer promises per row than one-by-one iteration). */
  rows: AsyncIterable<DataRow[]>;
  /** Rough number of data rows (CSV: line count), or null when unknown until the end (XLSX). */
  estimatedRows: number | null;
  close(): void;
}

async function readHead(path: string, n: number): Promise<Buffer> {
  const fh = await open(path, 'r');
  try {
    const buf = Buffer.alloc(n);
    const { bytesRead } = await fh.read(buf, 0, n, 0);
    return buf.subarray(0, bytesRead);
  } finally {
    await fh.close();
  }
}

/**
 * Decides CSV or XLSX from the content (never from the name or the declared content type alone):
 * a zip that holds xl/workbook.xml is XLSX; valid UTF-8 text without NUL bytes is CSV; anything
 * else (PDF, images, legacy .xls, other zips) is refused.
 */
export async function sniffFormat(path: string): Promise<BulkFormat> {
  const head = await readHead(path, 64 * 1024);
  if (head.length === 0) throw new BulkFileError('empty_file', 'the file is empty');
  if (head[0] === 0x50 && head[1] === 0x4b && head[2] === 0x03 && head[3] === 0x04) return 'xlsx';
  if (head[0] === 0xd0 && head[1] === 0xcf && head[2] === 0x11 && head[3] === 0xe0)
    throw new BulkFileError('wrong_content', 'legacy Excel (.xls) files are not supported: save the sheet as .xlsx or .csv');
  if (head.includes(0)) throw new BulkFileError('wrong_content', 'not a CSV or XLSX file (binary content)');
  // A multi-byte character may be cut at the end of the sample: check all but the last 4 bytes.
  const sample = head.length === 64 * 1024 ? head.subarray(0, head.length - 4) : head;
  try {
    new TextDecoder('utf-8', { fatal: true }).decode(sample);
  } catch {
    throw new BulkFileError('wrong_content', 'not a CSV file: the text is not UTF-8');
  }
  return 'csv';
}

// ------------------------------------------------------------------------------------------
// CSV
// ------------------------------------------------------------------------------------------

async function countLines(path: string): Promise<number> {
  let n = 0;
  let last = 10;
  for await (const chunk of createReadStream(path, { highWaterMark: 1 << 20 }) as AsyncIterable<Buffer>) {
    let i = -1;
    while ((i = chunk.indexOf(10, i + 1)) !== -1) n++;
    if (chunk.length > 0) last = chunk[chunk.length - 1]!;
  }
  return last === 10 ? n : n + 1;
}

function detectDelimiter(head: string): string {
  const first = head.split(/\r?\n/, 1)[0] ?? '';
  const counts = [',', ';', '\t'].map((d) => [d, first.split(d).length - 1] as const);
  counts.sort((a, b) => b[1] - a[1]);
  return counts[0]![1] > 0 ? counts[0]![0] : ',';
}

function csvError(err: unknown, limits: ReaderLimits): BulkFileError {
  const e = err as Error & { code?: string; lines?: number };
  const where = e.lines ? ` (line ${e.lines})` : '';
  if (e.code === 'CSV_MAX_RECORD_SIZE')
    return new BulkFileError('line_too_long', `a line is longer than ${limits.maxLineBytes} bytes${where}: one row may not exceed that`);
  return new BulkFileError('malformed_csv', `malformed CSV${where}: ${e.message.replace(/^Invalid (Record|Opening Quote|Closing Quote)?:?\s*/, '')}`);
}

async function openCsv(path: string, limits: ReaderLimits): Promise<OpenedFile> {
  const head = (await readHead(path, 64 * 1024)).toString('utf8');
  const delimiter = detectDelimiter(head);
  const estimatedLines = await countLines(path);
  const stream = createReadStream(path, { highWaterMark: 1 << 20 });
  // No `info: true`: it allocates an object per record and costs more than the parsing. Lines
  // are counted here instead: one per record plus the newlines inside quoted cells, and empty
  // lines (kept by the parser) are skipped.
  const parser = parse({ delimiter, bom: true, relax_column_count: true, skip_empty_lines: false, max_record_size: limits.maxLineBytes });
  let failure: unknown = null;
  let ended = false;
  let wake: (() => void) | null = null;
  const notify = () => {
    const w = wake;
    wake = null;
    w?.();
  };
  parser.on('readable', notify);
  parser.on('end', () => {
    ended = true;
    notify();
  });
  parser.on('error', (e) => {
    failure = e;
    notify();
  });
  stream.on('error', (e) => parser.destroy(e));
  stream.pipe(parser);
  let line = 0;
  const isEmpty = (rec: string[]) => rec.length === 1 && rec[0] === '';
  const span = (rec: string[]) => {
    let extra = 0;
    for (const cell of rec) if (cell.includes('\n')) extra += cell.split('\n').length - 1;
    return extra;
  };
  /** Up to `max` records (with their first line), [] at the end. */
  const nextBatch = async (max: number): Promise<DataRow[]> => {
    const out: DataRow[] = [];
    for (;;) {
      if (failure) throw csvError(failure, limits);
      let rec: string[] | null;
      while (out.length < max && (rec = parser.read() as string[] | null) !== null) {
        const start = ++line;
        line += span(rec);
        if (isEmpty(rec)) continue;
        out.push({ line: start, cells: rec });
      }
      if (out.length >= max || (out.length > 0 && !parser.readableLength)) return out;
      if (ended || parser.destroyed) {
        if (failure) throw csvError(failure, limits);
        return out;
      }
      await new Promise<void>((r) => (wake = r));
    }
  };
  let first: DataRow[];
  try {
    first = await nextBatch(1);
  } catch (err) {
    stream.destroy();
    throw err;
  }
  if (first.length === 0) throw new BulkFileError('empty_file', 'the file is empty');
  const header = first[0]!.cells;
  const rows = (async function* () {
    let count = 0;
    try {
      for (;;) {
        const batch = await nextBatch(1000);
        if (batch.length === 0) return;
        count += batch.length;
        if (count > limits.maxRows) throw new BulkFileError('too_many_rows', `more than ${limits.maxRows} rows`);
        yield batch;
      }
    } finally {
      stream.destroy();
    }
  })();
  return {
    format: 'csv',
    header,
    rows,
    estimatedRows: Math.max(0, estimatedLines - 1),
    close: () => {
      stream.destroy();
      parser.destroy();
    },
  };
}

// ------------------------------------------------------------------------------------------
// XLSX
// ------------------------------------------------------------------------------------------

interface ZipEntry {
  name: string;
  compressed: number;
  uncompressed: number;
  method: number;
  localOffset: number;
}

/**
 * Reads the zip central directory (without inflating anything) and refuses zip bombs: too much
 * declared uncompressed data, an extreme compression ratio, zip64 or encrypted entries, too many
 * parts, or no workbook part. What the directory declares is only a first filter: the entries are
 * inflated later through inflateEntry(), which counts what actually comes out.
 */
async function checkXlsxContainer(path: string, limits: ReaderLimits): Promise<ZipEntry[]> {
  const size = (await stat(path)).size;
  const fh = await open(path, 'r');
  try {
    const tailLen = Math.min(size, 65_557);
    const tail = Buffer.alloc(tailLen);
    await fh.read(tail, 0, tailLen, size - tailLen);
    let eocd = -1;
    for (let i = tailLen - 22; i >= 0; i--) {
      if (tail.readUInt32LE(i) === 0x06054b50) {
        eocd = i;
        break;
      }
    }
    if (eocd < 0) throw new BulkFileError('bad_xlsx', 'not a valid XLSX file (the zip directory is missing or the file is truncated)');
    const entries = tail.readUInt16LE(eocd + 10);
    const cdSize = tail.readUInt32LE(eocd + 12);
    const cdOffset = tail.readUInt32LE(eocd + 16);
    if (entries === 0xffff || cdSize === 0xffffffff || cdOffset === 0xffffffff)
      throw new BulkFileError('zip_bomb', 'XLSX refused: zip64 archives are not accepted (the workbook would be far larger than any bulk upload)');
    if (entries > 10_000) throw new BulkFileError('zip_bomb', `XLSX refused: ${entries} parts in the archive`);
    if (cdOffset + cdSize > size) throw new BulkFileError('bad_xlsx', 'not a valid XLSX file (corrupt zip directory)');
    const cd = Buffer.alloc(cdSize);
    await fh.read(cd, 0, cdSize, cdOffset);
    const out: ZipEntry[] = [];
    const seen = new Set<string>();
    let p = 0;
    let total = 0;
    for (let k = 0; k < entries; k++) {
      if (p + 46 > cd.length || cd.readUInt32LE(p) !== 0x02014b50) throw new BulkFileError('bad_xlsx', 'not a valid XLSX file (corrupt zip directory)');
      const flags = cd.readUInt16LE(p + 8);
      const method = cd.readUInt16LE(p + 10);
      const compressed = cd.readUInt32LE(p + 20);
      const uncompressed = cd.readUInt32LE(p + 24);
      const nameLen = cd.readUInt16LE(p + 28);
      const extraLen = cd.readUInt16LE(p + 30);
      const commentLen = cd.readUInt16LE(p + 32);
      const localOffset = cd.readUInt32LE(p + 42);
      const name = cd.toString('utf8', p + 46, p + 46 + nameLen);
      p += 46 + nameLen + extraLen + commentLen;
      if (flags & 1) throw new BulkFileError('bad_xlsx', 'XLSX refused: encrypted (password-protected) workbooks are not accepted');
      if (compressed === 0xffffffff || uncompressed === 0xffffffff || localOffset === 0xffffffff) throw new BulkFileError('zip_bomb', 'XLSX refused: zip64 entries are not accepted');
      if (method !== 0 && method !== 8) throw new BulkFileError('bad_xlsx', `XLSX refused: part ${name} uses zip compression method ${method} (only stored and deflated parts are read)`);
      // Two parts of one name would let what is checked differ from what is read.
      if (seen.has(name)) throw new BulkFileError('bad_xlsx', `not a valid XLSX file (the archive holds ${name} twice)`);
      seen.add(name);
      total += uncompressed;
      if (total > limits.maxXlsxUncompressedBytes)
        throw new BulkFileError('zip_bomb', `XLSX refused: it unpacks to more than ${limits.maxXlsxUncompressedBytes} bytes (a zip bomb?)`);
      if (uncompressed > 1024 * 1024 && uncompressed / Math.max(1, compressed) > limits.maxXlsxRatio)
        throw new BulkFileError('zip_bomb', `XLSX refused: part ${name} is compressed ${Math.round(uncompressed / Math.max(1, compressed))}:1 (a zip bomb?)`);
      if (!isWorksheet(name) && uncompressed > limits.maxXlsxPartBytes)
        throw new BulkFileError('zip_bomb', `XLSX refused: part ${name} unpacks to ${uncompressed} bytes, more than the limit of ${limits.maxXlsxPartBytes} for a part that is held in memory`);
      out.push({ name, compressed, uncompressed, method, localOffset });
    }
    if (!out.some((e) => e.name === 'xl/workbook.xml')) throw new BulkFileError('wrong_content', 'not an XLSX workbook (a zip without xl/workbook.xml)');
    return out;
  } finally {
    await fh.close();
  }
}

const WORKSHEET = /^xl\/worksheets\/sheet(\d+)\.xml$/;
function isWorksheet(name: string): boolean {
  return WORKSHEET.test(name);
}

/**
 * Counts the bytes every part of one workbook actually inflates to. The zip directory's sizes are
 * the sender's claim: a part that inflates past what it declared, a part held in memory (all but
 * the worksheets, which are parsed as a stream) past maxXlsxPartBytes, or the whole past
 * maxXlsxUncompressedBytes or maxXlsxInflateRatio times the file's size, stops the inflation at
 * once, before the bytes reach any parser.
 */
class InflationMeter {
  private total = 0;
  constructor(
    private readonly fileSize: number,
    private readonly limits: ReaderLimits,
  ) {}

  /** Adds `n` bytes of `entry` (whose count so far, these included, is `entryBytes`); an error when a limit is passed. */
  add(entry: ZipEntry, entryBytes: number, n: number): BulkFileError | null {
    this.total += n;
    if (entryBytes > entry.uncompressed)
      return new BulkFileError('zip_bomb', `XLSX refused: part ${entry.name} inflates to more than the ${entry.uncompressed} bytes its zip directory declares (a zip bomb?); stopped after ${entryBytes} bytes`);
    if (!isWorksheet(entry.name) && entryBytes > this.limits.maxXlsxPartBytes)
      return new BulkFileError('zip_bomb', `XLSX refused: part ${entry.name} inflates to more than ${this.limits.maxXlsxPartBytes} bytes (a zip bomb?)`);
    if (this.total > this.limits.maxXlsxUncompressedBytes)
      return new BulkFileError('zip_bomb', `XLSX refused: it inflates to more than ${this.limits.maxXlsxUncompressedBytes} bytes (a zip bomb?)`);
    // Small workbooks are exempt: a few kilobytes of XML may well compress better than 100:1.
    if (this.total > RATIO_FLOOR_BYTES && this.total > this.limits.maxXlsxInflateRatio * this.fileSize)
      return new BulkFileError('zip_bomb', `XLSX refused: it inflates to more than ${this.limits.maxXlsxInflateRatio} times its size of ${this.fileSize} bytes (a zip bomb?)`);
    return null;
  }
}

const RATIO_FLOOR_BYTES = 16 * 1024 * 1024;

/** One part's content, inflated as it is read (back-pressured), counted by the meter. */
async function inflateEntry(path: string, fileSize: number, entry: ZipEntry, meter: InflationMeter): Promise<Readable> {
  const fh = await open(path, 'r');
  let start: number;
  try {
    const local = Buffer.alloc(30);
    const { bytesRead } = await fh.read(local, 0, 30, entry.localOffset);
    if (bytesRead < 30 || local.readUInt32LE(0) !== 0x04034b50) throw new BulkFileError('bad_xlsx', `not a valid XLSX file (part ${entry.name} is missing or corrupt)`);
    start = entry.localOffset + 30 + local.readUInt16LE(26) + local.readUInt16LE(28);
  } finally {
    await fh.close();
  }
  if (start + entry.compressed > fileSize) throw new BulkFileError('bad_xlsx', `not a valid XLSX file (part ${entry.name} runs past the end of the file)`);
  let seen = 0;
  const counter = new Transform({
    transform(chunk: Buffer, _enc, cb) {
      seen += chunk.length;
      const over = meter.add(entry, seen, chunk.length);
      if (over) cb(over);
      else cb(null, chunk);
    },
  });
  const raw = entry.compressed === 0 ? Readable.from([]) : createReadStream(path, { start, end: start + entry.compressed - 1, highWaterMark: 64 * 1024 });
  const stages: Array<NodeJS.ReadableStream | NodeJS.WritableStream> = entry.method === 8 ? [raw, createInflateRaw({ chunkSize: 64 * 1024 }), counter] : [raw, counter];
  pipeline(stages as unknown as [Readable, Transform], (err) => {
    if (err && !counter.destroyed) counter.destroy(err instanceof BulkFileError ? err : new BulkFileError('bad_xlsx', `not a valid XLSX file (part ${entry.name}: ${err.message})`));
  });
  return counter;
}

/**
 * Checks a whole workbook at the door: the directory (checkXlsxContainer), then every part
 * inflated and counted, the output thrown away. Bounded by the same limits as the reader, so a
 * bomb costs at most what the limits allow.
 */
export async function checkXlsxFile(path: string, limits: ReaderLimits = DEFAULT_LIMITS): Promise<void> {
  const entries = await checkXlsxContainer(path, limits);
  const size = (await stat(path)).size;
  const meter = new InflationMeter(size, limits);
  for (const e of entries) {
    const s = await inflateEntry(path, size, e, meter);
    for await (const _ of s);
  }
}

function isPercentFormat(numFmt: string | undefined): boolean {
  return !!numFmt && numFmt.replace(/"[^"]*"/g, '').replace(/\\./g, '').includes('%');
}

type XlsxRow = { number: number; values: unknown; getCell(i: number): { numFmt?: string } };

function xlsxCell(v: unknown, numFmt: () => string | undefined): Cell {
  if (v === null || v === undefined) return null;
  if (typeof v === 'number') return isPercentFormat(numFmt()) ? v * 100 : v;
  if (typeof v === 'string') return v;
  if (typeof v === 'boolean') return String(v).toUpperCase();
  if (v instanceof Date) return v.toISOString();
  if (typeof v === 'object') {
    const o = v as Record<string, unknown>;
    if ('formula' in o || 'sharedFormula' in o) return FORMULA;
    if (Array.isArray(o.richText)) return (o.richText as Array<{ text?: string }>).map((t) => t.text ?? '').join('');
    if (typeof o.text === 'string') return o.text;
    if (typeof o.error === 'string') return o.error;
  }
  return String(v);
}

/** The parts of exceljs's streaming WorkbookReader that BoundedWorkbookReader builds on. */
interface WorkbookReaderInternals {
  options: { sharedStrings?: string; styles?: string };
  _parseRels(entry: Readable): Promise<void>;
  _parseWorkbook(entry: Readable): Promise<void>;
  _parseStyles(entry: Readable): Promise<void>;
  _parseSharedStrings(entry: Readable): AsyncGenerator<unknown>;
  _parseWorksheet(iterator: AsyncIterable<unknown>, sheetNo: string): Generator<{ eventType: string; value: unknown }>;
}
const WorkbookReaderBase = ExcelJS.stream.xlsx.WorkbookReader as unknown as new (input: unknown, options: object) => WorkbookReaderInternals & AsyncIterable<unknown>;

/**
 * exceljs's streaming reader with the zip layer replaced. Its own (unzipper's Parse) trusts the
 * sizes the archive declares, inflates each part to the end whatever it yields, and spools
 * worksheets that come before the shared strings to temporary files; this one reads the parts
 * the central directory lists through inflateEntry() (every byte counted against the limits),
 * in an order that needs no spooling (relationships, workbook, styles, shared strings, then the
 * worksheets), and caps the memory the cached shared strings take.
 */
class BoundedWorkbookReader extends WorkbookReaderBase {
  private readonly open = new Set<Readable>();

  constructor(
    private readonly file: string,
    private readonly fileSize: number,
    private readonly entries: ZipEntry[],
    private readonly meter: InflationMeter,
    limits: ReaderLimits,
  ) {
    super(file, { sharedStrings: 'cache', styles: 'cache', hyperlinks: 'ignore', worksheets: 'emit', entries: 'ignore' });
    // exceljs assigns `this.sharedStrings = []` and pushes every string into it: a budget on
    // that array stops a part of millions of tiny strings from becoming gigabytes of heap.
    let cache: unknown[] | undefined;
    Object.defineProperty(this, 'sharedStrings', {
      configurable: true,
      get: () => cache,
      set: (v: unknown[] | undefined) => {
        cache = Array.isArray(v) ? boundedStrings(limits.maxSharedStringsBytes) : v;
      },
    });
  }

  private async part(e: ZipEntry): Promise<Readable> {
    const s = await inflateEntry(this.file, this.fileSize, e, this.meter);
    this.open.add(s);
    s.once('close', () => this.open.delete(s));
    return s;
  }

  async *parse(): AsyncGenerator<{ eventType: string; value: unknown }> {
    const byName = new Map(this.entries.map((e) => [e.name, e]));
    const rels = byName.get('xl/_rels/workbook.xml.rels');
    if (rels) await this._parseRels(await this.part(rels));
    await this._parseWorkbook(await this.part(byName.get('xl/workbook.xml')!));
    const styles = byName.get('xl/styles.xml');
    if (styles) await this._parseStyles(await this.part(styles));
    const strings = byName.get('xl/sharedStrings.xml');
    if (strings) {
      // Drained here: exceljs's generator yields nothing in 'cache' mode.
      for await (const ignored of this._parseSharedStrings(await this.part(strings))) void ignored;
    }
    for (const e of this.entries) {
      const m = WORKSHEET.exec(e.name);
      if (m) yield* this._parseWorksheet(await this.part(e), m[1]!);
    }
  }

  close(): void {
    for (const s of this.open) s.destroy();
    this.open.clear();
  }
}

function boundedStrings(budget: number): unknown[] {
  const arr: unknown[] = [];
  let used = 0;
  const push = Array.prototype.push;
  arr.push = (...items: unknown[]) => {
    for (const it of items) {
      // A rough heap cost: V8's per-string and per-slot overhead, plus the characters.
      used += 40 + sharedStringChars(it);
      if (used > budget)
        throw new BulkFileError('zip_bomb', `XLSX refused: its shared strings take more than ${budget} bytes of memory (${arr.length} strings read); save the sheet as CSV or split it`);
      push.call(arr, it);
    }
    return arr.length;
  };
  return arr;
}

function sharedStringChars(v: unknown): number {
  if (typeof v === 'string') return v.length;
  const runs = (v as { richText?: Array<{ text?: string | null }> } | null)?.richText;
  if (Array.isArray(runs)) return runs.reduce((n, r) => n + 64 + (r.text?.length ?? 0), 0);
  return 0;
}

async function openXlsx(path: string, limits: ReaderLimits): Promise<OpenedFile> {
  const entries = await checkXlsxContainer(path, limits);
  const size = (await stat(path)).size;
  const reader = new BoundedWorkbookReader(path, size, entries, new InflationMeter(size, limits), limits);
  const wrap = (err: unknown): BulkFileError =>
    err instanceof BulkFileError ? err : new BulkFileError('bad_xlsx', `the XLSX file cannot be read: ${(err as Error).message}`);
  let sheetIt: AsyncIterator<unknown>;
  let rowIt: AsyncIterator<XlsxRow>;
  try {
    sheetIt = reader[Symbol.asyncIterator]();
    const sheet = await sheetIt.next();
    if (sheet.done) throw new BulkFileError('empty_file', 'the workbook has no worksheet');
    rowIt = (sheet.value as AsyncIterable<XlsxRow>)[Symbol.asyncIterator]();
  } catch (err) {
    reader.close();
    throw wrap(err);
  }
  const toCells = (row: XlsxRow): Cell[] => {
    const values = row.values as unknown[];
    const cells: Cell[] = [];
    for (let i = 1; i < values.length; i++) {
      const v = values[i];
      cells.push(xlsxCell(v, () => row.getCell(i).numFmt));
    }
    return cells;
  };
  let first: IteratorResult<XlsxRow>;
  try {
    first = await rowIt.next();
  } catch (err) {
    reader.close();
    throw wrap(err);
  }
  if (first.done) {
    reader.close();
    throw new BulkFileError('empty_file', 'the first worksheet is empty');
  }
  const header = toCells(first.value);
  const key = (cells: Cell[]) => JSON.stringify(cells.map((c) => (c === null || c === undefined ? '' : String(c).trim().toLowerCase())));
  const headerKey = key(header);
  // Every worksheet is more rows of one table: a long export is split across sheets, each
  // starting with the header again (exports.ts), and uploads again unchanged. Lines count on
  // through the sheets (a later sheet's header row is not counted), so each line is unique.
  const rows = (async function* () {
    let count = 0;
    let sheetNo = 1;
    let offset = 0;
    let lastLine = first.value.number;
    try {
      for (;;) {
        let r: IteratorResult<XlsxRow>;
        try {
          r = await rowIt.next();
        } catch (err) {
          throw wrap(err);
        }
        if (r.done) {
          let next: IteratorResult<unknown>;
          let head: IteratorResult<XlsxRow>;
          try {
            next = await sheetIt.next();
            if (next.done) return;
            rowIt = (next.value as AsyncIterable<XlsxRow>)[Symbol.asyncIterator]();
            head = await rowIt.next();
          } catch (err) {
            throw wrap(err);
          }
          sheetNo++;
          if (head.done) continue; // an empty sheet
          if (key(toCells(head.value)) !== headerKey)
            throw new BulkFileError('no_header', `worksheet ${sheetNo} does not start with the first worksheet's header row; every worksheet is read as more rows of the same table (put other data in another file)`);
          offset = lastLine - head.value.number;
          continue;
        }
        const cells = toCells(r.value);
        if (cells.every((c) => c === null || c === undefined || c === '')) continue;
        if (++count > limits.maxRows) throw new BulkFileError('too_many_rows', `more than ${limits.maxRows} rows`);
        const line = offset + r.value.number;
        lastLine = line;
        yield [{ line, cells }];
      }
    } finally {
      reader.close();
    }
  })();
  return { format: 'xlsx', header, rows, estimatedRows: null, close: () => reader.close() };
}

export async function openBulkFile(path: string, limits: ReaderLimits = DEFAULT_LIMITS): Promise<OpenedFile> {
  const format = await sniffFormat(path);
  return format === 'csv' ? openCsv(path, limits) : openXlsx(path, limits);
}
