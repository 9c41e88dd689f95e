import { spawn, type ChildProcess } from 'node:child_process';
import { mkdtempSync } from 'node:fs';
import net from 'node:net';
import os from 'node:os';
import path from 'node:path';
import { freePort } from '../../src/ops/dr/local.js';


async function waitPort(port: number, open: boolean, ms = 10_000): Promise<void> {
  const end = Date.now() + ms;
  while (Date.now() < end) {
    const ok = await new Promise<boolean>((resolve) => {
      const s = net.connect(port, '127.0.0.1');
      s.once('connect', () => { s.destroy(); resolve(true); });
      s.once('error', () => resolve(false));
    });
    if (ok === open) return;
    await new Promise((r) => setTimeout(r, 50));
  }
  throw new Error(`redis port ${port} did not become ${open ? 'open' : 'closed'}`);
}

/** A throwaway redis-server of a test's own (never reconfigure the shared one). */
export class ScratchRedis {
  child: ChildProcess | null = null;
  readonly dir = mkdtempSync(path.join(os.tmpdir(), 'accunode-redis-'));
  constructor(readonly port: number, readonly args: string[] = []) {}

  static async start(args: string[] = []): Promise<ScratchRedis> {
    const r = new ScratchRedis(await freePort(), args);
    await r.restart();
    return r;
  }

  get url(): string {
    return `redis://127.0.0.1:${this.port}`;
  }

  async restart(): Promise<void> {
    this.child = spawn('redis-server', ['--port', String(this.port), '--bind', '127.0.0.1', '--dir', this.dir, '--save', '', '--appendonly', 'no', ...this.args], { stdio: 'ignore' });
    await waitPort(this.port, true);
  }

  async stop(): Promise<void> {
    if (!this.child || this.child.exitCode !== null) return;
    const c = this.child;
    await new Promise<void>((resolve) => {
      c.once('exit', () => resolve());
      c.kill('SIGKILL');
    });
    await waitPort(this.port, false);
  }

  freeze(): void {
    this.child?.kill('SIGSTOP');
  }

  thaw(): void {
    this.child?.kill('SIGCONT');
  }
}
