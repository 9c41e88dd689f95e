/**
 * Loads the model artifacts from disk and builds the risk engine. The only I/O around the engine.
 */
import { readFile } from 'node:fs/promises';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { createRiskEngine, type ModelKind, type RiskEngine, type RiskThresholds } from '../risk/index.js';

/**
 * <package root>/models. This file runs as src/services/model-store.ts under tsx/vitest and as
 * dist/services/model-store.js when compiled; walking up to the nearest `src` or `dist` directory
 * works for both (and for a dist/src/... layout) instead of hard-coding a depth.
 */
export function defaultModelsDir(): string {
  const here = path.dirname(fileURLToPath(import.meta.url));
  let dir = here;
  for (let i = 0; i < 6; i++) {
    const parent = path.dirname(dir);
    if (path.basename(dir) === 'src' || path.basename(dir) === 'dist') return path.join(parent, 'models');
    dir = parent;
  }
  return path.resolve(here, '..', '..', 'models');
}

export const MODEL_FILES: Readonly<Record<ModelKind, string>> = { annual: 'annual.json', quarterly: 'quarterly.json' };

export async function readArtifact(file: string): Promise<unknown> {
  let text: string;
  try {
    text = await readFile(file, 'utf8');
  } catch (e) {
    throw new Error(`cannot read model artifact ${file}: ${(e as Error).message}`);
  }
  try {
    return JSON.parse(text) as unknown;
  } catch (e) {
    throw new Error(`model artifact ${file} is not valid JSON: ${(e as Error).message}`);
  }
}

/** Both shipped artifacts of `dir`, parsed but not yet validated (createRiskEngine does that). */
export async function readModelFiles(dir: string = defaultModelsDir()): Promise<Record<ModelKind, unknown>> {
  const [annual, quarterly] = await Promise.all([
    readArtifact(path.join(dir, MODEL_FILES.annual)),
    readArtifact(path.join(dir, MODEL_FILES.quarterly)),
  ]);
  return { annual, quarterly };
}

export async function loadModels(dir: string = defaultModelsDir(), thresholds?: Partial<RiskThresholds>): Promise<RiskEngine> {
  const { annual, quarterly } = await readModelFiles(dir);
  const opts: Parameters<typeof createRiskEngine>[0] = { annual, quarterly };
  if (thresholds) opts.thresholds = thresholds;
  return createRiskEngine(opts);
}
