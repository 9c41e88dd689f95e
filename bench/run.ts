// `npm run bench`: runs every bench/*.ts that exports run(), writes bench/results/latest.json
// and prints a markdown table (scenario, figure, baseline measured in the same run, ratio).
import { mkdirSync, readdirSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';

export interface BenchResult {
  scenario: string;
  figure: number;
  unit: string;
  baseline: number;
  ratio: number;
}

const dir = path.dirname(fileURLToPath(import.meta.url));
const only = process.argv.slice(2);
const files = readdirSync(dir)
  .filter((f) => f.endsWith('.ts') && f !== 'run.ts' && !f.startsWith('_'))
  .filter((f) => only.length === 0 || only.includes(f.replace(/\.ts$/, '')));

const results: BenchResult[] = [];
for (const f of files) {
  const mod = (await import(pathToFileURL(path.join(dir, f)).href)) as { run?: () => Promise<BenchResult[]> };
  if (typeof mod.run !== 'function') continue;
  process.stderr.write(`bench ${f}...\n`);
  results.push(...(await mod.run()));
}

const machine = `${os.cpus().length} × ${os.cpus()[0]?.model ?? 'cpu'}, ${Math.round(os.totalmem() / 2 ** 30)} GiB, Node ${process.version}`;
mkdirSync(path.join(dir, 'results'), { recursive: true });
writeFileSync(path.join(dir, 'results', 'latest.json'), JSON.stringify({ machine, at: new Date().toISOString(), results }, null, 2) + '\n');
const fmt = (n: number) => (Math.abs(n) >= 100 ? Math.round(n).toLocaleString('en-US') : n.toPrecision(3));
console.log(`Machine: ${machine}\n`);
console.log('| scenario | figure | baseline (same run) | ratio |\n|---|---|---|---|');
for (const r of results) console.log(`| ${r.scenario} | ${fmt(r.figure)} ${r.unit} | ${fmt(r.baseline)} ${r.unit} | ${r.ratio.toFixed(3)} |`);
