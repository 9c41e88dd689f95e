// A minimal zip writer (deflated entries, no zip64) for hostile XLSX files: zip bombs, zips that
// are not workbooks, truncated archives.
import zlib from 'node:zlib';

export function makeZip(entries: Array<[string, Buffer]>, deflate: (b: Buffer) => Buffer): Buffer {
  const crc32 = (zlib as unknown as { crc32?: (b: Buffer) => number }).crc32;
  const parts: Buffer[] = [];
  const central: Buffer[] = [];
  let offset = 0;
  for (const [name, data] of entries) {
    const comp = deflate(data);
    const crc = crc32 ? crc32(data) >>> 0 : 0;
    const nameBuf = Buffer.from(name);
    const local = Buffer.alloc(30);
    local.writeUInt32LE(0x04034b50, 0);
    local.writeUInt16LE(20, 4);
    local.writeUInt16LE(8, 8);
    local.writeUInt32LE(crc, 14);
    local.writeUInt32LE(comp.length, 18);
    local.writeUInt32LE(data.length, 22);
    local.writeUInt16LE(nameBuf.length, 26);
    parts.push(local, nameBuf, comp);
    const cd = Buffer.alloc(46);
    cd.writeUInt32LE(0x02014b50, 0);
    cd.writeUInt16LE(20, 4);
    cd.writeUInt16LE(20, 6);
    cd.writeUInt16LE(8, 10);
    cd.writeUInt32LE(crc, 16);
    cd.writeUInt32LE(comp.length, 20);
    cd.writeUInt32LE(data.length, 24);
    cd.writeUInt16LE(nameBuf.length, 28);
    cd.writeUInt32LE(offset, 42);
    central.push(cd, nameBuf);
    offset += 30 + nameBuf.length + comp.length;
  }
  const cdBuf = Buffer.concat(central);
  const end = Buffer.alloc(22);
  end.writeUInt32LE(0x06054b50, 0);
  end.writeUInt16LE(entries.length, 8);
  end.writeUInt16LE(entries.length, 10);
  end.writeUInt32LE(cdBuf.length, 12);
  end.writeUInt32LE(offset, 16);
  return Buffer.concat([...parts, cdBuf, end]);
}

export interface RawZipEntry {
  name: string;
  /** The part's bytes as stored in the archive (raw deflate when method is 8). */
  stored: Buffer;
  /** The uncompressed size written to both the local header and the central directory. */
  declaredSize: number;
  method?: 0 | 8;
}

/** A zip whose entries carry whatever sizes the caller declares: what a hostile sender controls. */
export function makeRawZip(entries: RawZipEntry[]): Buffer {
  const parts: Buffer[] = [];
  const central: Buffer[] = [];
  let offset = 0;
  for (const e of entries) {
    const nameBuf = Buffer.from(e.name);
    const method = e.method ?? 8;
    const local = Buffer.alloc(30);
    local.writeUInt32LE(0x04034b50, 0);
    local.writeUInt16LE(20, 4);
    local.writeUInt16LE(method, 8);
    local.writeUInt32LE(e.stored.length, 18);
    local.writeUInt32LE(e.declaredSize, 22);
    local.writeUInt16LE(nameBuf.length, 26);
    parts.push(local, nameBuf, e.stored);
    const cd = Buffer.alloc(46);
    cd.writeUInt32LE(0x02014b50, 0);
    cd.writeUInt16LE(20, 4);
    cd.writeUInt16LE(20, 6);
    cd.writeUInt16LE(method, 10);
    cd.writeUInt32LE(e.stored.length, 20);
    cd.writeUInt32LE(e.declaredSize, 24);
    cd.writeUInt16LE(nameBuf.length, 28);
    cd.writeUInt32LE(offset, 42);
    central.push(cd, nameBuf);
    offset += 30 + nameBuf.length + e.stored.length;
  }
  const cdBuf = Buffer.concat(central);
  const end = Buffer.alloc(22);
  end.writeUInt32LE(0x06054b50, 0);
  end.writeUInt16LE(entries.length, 8);
  end.writeUInt16LE(entries.length, 10);
  end.writeUInt32LE(cdBuf.length, 12);
  end.writeUInt32LE(offset, 16);
  return Buffer.concat([...parts, cdBuf, end]);
}

/**
 * Raw deflate data that inflates to `head`, then `unit` repeated `times` times, then `tail`,
 * built without ever holding the inflated bytes: one block of repetitions is compressed once
 * (full flush: byte-aligned, no reference to earlier data) and the compressed block repeated,
 * so gigabytes of output cost a few megabytes of archive and of test memory.
 */
export function repeatedDeflate(head: string, unit: string, times: number, tail: string): { data: Buffer; inflatedSize: number } {
  const perBlock = Math.max(1, Math.floor((1 << 20) / unit.length));
  const blocks = Math.floor(times / perBlock);
  const rest = times - blocks * perBlock;
  const flush = { finishFlush: zlib.constants.Z_FULL_FLUSH, level: 9 };
  const headZ = zlib.deflateRawSync(Buffer.from(head), flush);
  const blockZ = zlib.deflateRawSync(Buffer.from(unit.repeat(perBlock)), flush);
  const restZ = zlib.deflateRawSync(Buffer.from(unit.repeat(rest)), flush);
  const tailZ = zlib.deflateRawSync(Buffer.from(tail));
  const data = Buffer.concat([headZ, ...Array.from({ length: blocks }, () => blockZ), restZ, tailZ]);
  return { data, inflatedSize: head.length + unit.length * times + tail.length };
}

const NS = 'http://schemas.openxmlformats.org/spreadsheetml/2006/main';

/**
 * A one-sheet workbook whose header row uses the shared strings, with the shared-strings part
 * given as the caller builds it (stored bytes and declared size), every other part honest.
 */
export function workbookWithSharedStrings(header: string[], sharedStrings: { stored: Buffer; declaredSize: number }, dataRows: string[] = []): Buffer {
  const honest = (name: string, xml: string): RawZipEntry => ({ name, stored: zlib.deflateRawSync(Buffer.from(xml)), declaredSize: Buffer.byteLength(xml) });
  const cells = header.map((_, i) => `<c r="${String.fromCharCode(65 + i)}1" t="s"><v>${i}</v></c>`).join('');
  return makeRawZip([
    honest('[Content_Types].xml', '<?xml version="1.0" encoding="UTF-8"?><Types xmlns="http://schemas.openxmlformats.org/package/2006/content-types"/>'),
    honest('xl/workbook.xml', `<?xml version="1.0" encoding="UTF-8"?><workbook xmlns="${NS}" xmlns:r="http://schemas.openxmlformats.org/officeDocument/2006/relationships"><sheets><sheet name="Data" sheetId="1" r:id="rId1"/></sheets></workbook>`),
    honest('xl/_rels/workbook.xml.rels', '<?xml version="1.0" encoding="UTF-8"?><Relationships xmlns="http://schemas.openxmlformats.org/package/2006/relationships"><Relationship Id="rId1" Type="http://schemas.openxmlformats.org/officeDocument/2006/relationships/worksheet" Target="worksheets/sheet1.xml"/></Relationships>'),
    { name: 'xl/sharedStrings.xml', ...sharedStrings },
    honest('xl/worksheets/sheet1.xml', `<?xml version="1.0" encoding="UTF-8"?><worksheet xmlns="${NS}"><sheetData><row r="1">${cells}</row>${dataRows.join('')}</sheetData></worksheet>`),
  ]);
}
