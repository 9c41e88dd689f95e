import path from 'node:path';
import type { Config } from '../config/index.js';

/** BULK_UPLOAD_DIR: the api writes uploads here and workers read them, so both must share it. */
export function bulkUploadDir(config: Config): string {
  return path.resolve(config.BULK_UPLOAD_DIR ?? path.join(config.dataDir, 'uploads'));
}
