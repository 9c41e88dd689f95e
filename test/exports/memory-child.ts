// Runs one export in a process of its own and reports its memory: argv = app_user URL, user id,
// role, format. The reader pauses now and then, as a slow client would, so the export must wait
// for it rather than buffer ahead.
import { Writable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import { createPool } from '../../src/db/pool.js';
import { ExportService, type ExportStats } from '../../src/services/exports.js';
import type { Role } from '../../src/domain/access.js';

const [url, userId, role, format] = process.argv.slice(2) as [string, string, Role, 'csv' | 'xlsx'];
const sql = createPool(url, { max: 2 });
const service = new ExportService({ sql, explain: () => undefined });
let bytes = 0;
let chunks = 0;
let warmRss = 0;
let peakRss = 0;
let stats: ExportStats | undefined;
const WARM_BYTES = 4 * 1024 * 1024;
const sink = new Writable({
  write(chunk: Buffer, _enc, cb) {
    bytes += chunk.length;
    chunks++;
    if (chunks % 64 === 0) {
      const rss = process.memoryUsage.rss();
      if (bytes >= WARM_BYTES && warmRss === 0) warmRss = rss;
      peakRss = Math.max(peakRss, rss);
    }
    // Every ~8 MB the reader stops for a moment.
    if (chunks % 512 === 0) setTimeout(cb, 20);
    else cb();
  },
});
const e = service.predictions({ userId, role, tenantId: null, organizationId: null }, 'annual', {}, { format, explain: false, onStats: (s) => (stats = s) });
await pipeline(e.stream, sink);
await e.done;
await sql.end({ timeout: 5 });
process.stdout.write(JSON.stringify({ bytes, rows: stats?.rows ?? 0, warmRss, peakRss }) + '\n');
