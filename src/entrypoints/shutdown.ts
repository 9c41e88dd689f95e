import type { Logger } from '../logging.js';

type Closer = { name: string; close: () => Promise<unknown> };

/**
 * Closes what a process opened, last opened first, once, on SIGINT/SIGTERM: the api stops
 * accepting requests and drains, then pools and servers close, then an embedded database stops
 * (so Ctrl-C leaves no orphan). A second signal exits at once.
 */
/** How long one shutdown step may take before the next one starts regardless. */
export const SHUTDOWN_STEP_MS = 10_000;

export class Shutdown {
  private closers: Closer[] = [];
  private running: Promise<void> | null = null;

  constructor(private readonly log: Logger) {}

  add(name: string, close: () => Promise<unknown>): void {
    this.closers.push({ name, close });
  }

  install(): void {
    let signals = 0;
    const onSignal = (sig: NodeJS.Signals) => {
      signals++;
      if (signals > 1) {
        this.log.warn({ signal: sig }, 'second signal: exiting now');
        process.exit(130);
      }
      this.log.info({ signal: sig }, 'shutting down');
      void this.run().then(() => process.exit(0));
    };
    process.on('SIGINT', onSignal);
    process.on('SIGTERM', onSignal);
    process.on('SIGHUP', onSignal);
    guardRejections(this.log);
  }

  run(): Promise<void> {
    this.running ??= (async () => {
      for (const c of [...this.closers].reverse()) {
        // Each step is bounded: a closer that never settles (seen once in CI, step unknown) must
        // not keep the process from exiting; the log names it.
        let timer: NodeJS.Timeout | undefined;
        const bounded = new Promise<'late'>((resolve) => {
          timer = setTimeout(() => resolve('late'), SHUTDOWN_STEP_MS);
          timer.unref();
        });
        try {
          const r = await Promise.race([Promise.resolve(c.close()).then(() => 'done' as const), bounded]);
          if (r === 'late') this.log.warn({ step: c.name, after_ms: SHUTDOWN_STEP_MS }, 'shutdown step still running; going on without it');
        } catch (err) {
          this.log.warn({ err, step: c.name }, 'error while shutting down');
        } finally {
          clearTimeout(timer);
        }
      }
    })();
    return this.running;
  }
}

let guarded = false;

/**
 * A long-running process (api, worker, scheduler, all-in-one) logs a promise rejection nobody
 * handled and keeps serving: Node's default ends the process, so one forgotten `.catch` in a
 * job (a full disk during the nightly backup) would take every queue of the worker down with
 * it. The job itself still fails through its own promise; this only keeps the process alive.
 * Uncaught exceptions keep Node's default (exit): the process state is unknown after one.
 */
export function guardRejections(log: Pick<Logger, 'error'>): void {
  if (guarded) return;
  guarded = true;
  process.on('unhandledRejection', (reason) => {
    const err = reason instanceof Error ? { message: reason.message, stack: reason.stack } : { message: String(reason) };
    log.error({ err }, 'unhandled promise rejection (a bug: the process keeps running)');
  });
}
