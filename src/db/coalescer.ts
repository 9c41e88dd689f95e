/**
 * Coalesces concurrent calls of one statement into batches: at most `maxInFlight` batches run at
 * once; a call made while they all run waits for the next batch, which takes every call waiting
 * then (up to `maxBatch`). Under light load each call runs alone and at once, so nothing waits
 * for a batch to fill; under load, calls share a round trip and a transaction.
 *
 * `run` gets the items of a batch and returns one result per item, in order. When a batch of
 * several fails, its items run again one by one, so one bad item fails alone and the others
 * still get their own outcome (`run` must be safe to repeat for a batch whose transaction failed:
 * a single statement is, as nothing of it committed).
 */
interface CoalescerOptions {
  maxInFlight: number;
  maxBatch: number;
}

interface Waiting<I, O> {
  item: I;
  resolve: (o: O) => void;
  reject: (e: unknown) => void;
}

export class Coalescer<I, O> {
  private readonly queue: Waiting<I, O>[] = [];
  private inFlight = 0;
  /** Batches run and items they carried (for tests and metrics). */
  readonly stats = { batches: 0, items: 0, largest: 0, split: 0 };

  constructor(
    private readonly run: (items: readonly I[]) => Promise<readonly O[]>,
    private readonly opts: CoalescerOptions,
  ) {
    if (!(opts.maxInFlight >= 1 && opts.maxBatch >= 1)) throw new RangeError('maxInFlight and maxBatch must be at least 1');
  }

  submit(item: I): Promise<O> {
    return new Promise<O>((resolve, reject) => {
      this.queue.push({ item, resolve, reject });
      this.pump();
    });
  }

  private pump(): void {
    while (this.inFlight < this.opts.maxInFlight && this.queue.length > 0) {
      const batch = this.queue.splice(0, this.opts.maxBatch);
      this.inFlight++;
      this.stats.batches++;
      this.stats.items += batch.length;
      if (batch.length > this.stats.largest) this.stats.largest = batch.length;
      void this.execute(batch).finally(() => {
        this.inFlight--;
        this.pump();
      });
    }
  }

  private async execute(batch: Waiting<I, O>[]): Promise<void> {
    let out: readonly O[];
    try {
      out = await this.run(batch.map((w) => w.item));
      if (out.length !== batch.length) throw new Error(`a batch of ${batch.length} returned ${out.length} results`);
    } catch (err) {
      if (batch.length === 1) {
        batch[0]!.reject(err);
        return;
      }
      this.stats.split++;
      // One by one, each with its own outcome; still within this batch's slot.
      for (const w of batch) {
        try {
          const [o] = await this.run([w.item]);
          w.resolve(o as O);
        } catch (e) {
          w.reject(e);
        }
      }
      return;
    }
    batch.forEach((w, i) => w.resolve(out[i]!));
  }
}
