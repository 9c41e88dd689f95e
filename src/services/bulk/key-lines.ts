/**
 * The last line of each (company, period) key seen in a bulk file, in 12 bytes per key instead of
 * a Map of strings (~100 bytes per key): a 1,000,000-row file keeps ~24 MB (half-full table)
 * rather than ~100 MB, so the worker's memory barely moves with the file's size.
 *
 * Keys are stored as 64-bit hashes (two independent 32-bit string hashes). Two different keys of
 * one file share a hash with probability about n² / 2^65 (3 in 100 million for a million rows);
 * the only effect would be one row reported as superseded in the job's error report and counts:
 * the stored predictions are decided by the database's unique keys, never by this table.
 */
function hash32(s: string, seed: number): number {
  let h = seed ^ s.length;
  for (let i = 0; i < s.length; i++) {
    h = Math.imul(h ^ s.charCodeAt(i), 0x5bd1e995);
    h ^= h >>> 15;
  }
  h = Math.imul(h ^ (h >>> 13), 0x85ebca6b);
  h = Math.imul(h ^ (h >>> 16), 0xc2b2ae35);
  return (h ^ (h >>> 16)) >>> 0;
}

export class KeyLines {
  private hi = new Uint32Array(1024);
  private lo = new Uint32Array(1024);
  /** 0 = empty slot; otherwise line + 1 (lines start at 1, so never 0 anyway). */
  private lines = new Int32Array(1024);
  private used = 0;

  get size(): number {
    return this.used;
  }

  /** Records `line` as the key's latest; returns the line it replaces, or undefined. */
  set(key: string, line: number): number | undefined {
    if ((this.used + 1) * 2 > this.lines.length) this.grow();
    const a = hash32(key, 0x9747b28c);
    const b = hash32(key, 0x1b873593);
    const mask = this.lines.length - 1;
    for (let i = a & mask; ; i = (i + 1) & mask) {
      if (this.lines[i] === 0) {
        this.hi[i] = a;
        this.lo[i] = b;
        this.lines[i] = line + 1;
        this.used++;
        return undefined;
      }
      if (this.hi[i] === a && this.lo[i] === b) {
        const prev = this.lines[i]! - 1;
        this.lines[i] = line + 1;
        return prev;
      }
    }
  }

  private grow(): void {
    const { hi, lo, lines } = this;
    const n = lines.length * 2;
    this.hi = new Uint32Array(n);
    this.lo = new Uint32Array(n);
    this.lines = new Int32Array(n);
    const mask = n - 1;
    for (let j = 0; j < lines.length; j++) {
      if (lines[j] === 0) continue;
      let i = hi[j]! & mask;
      while (this.lines[i] !== 0) i = (i + 1) & mask;
      this.hi[i] = hi[j]!;
      this.lo[i] = lo[j]!;
      this.lines[i] = lines[j]!;
    }
  }
}
