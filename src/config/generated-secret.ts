// Secrets the all-in-one mode (`accunode up`) makes for itself when none is configured: kept
// 0600 under $ACCUNODE_DATA_DIR/secrets/ (like the role passwords), so restarts and other local
// processes (a Prometheus on this host) read the same one.
import { randomBytes } from 'node:crypto';
import { chmodSync, existsSync, mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import path from 'node:path';

export function generatedSecretFile(dataDir: string, name: string): string {
  return path.join(dataDir, 'secrets', name);
}

export function resolveGeneratedSecret(dataDir: string, name: string): string {
  return readOrCreateSecret(generatedSecretFile(dataDir, name), 32);
}

/**
 * The secret in `file`, or a new one of `bytes` random bytes (base64url) written there 0600 in a
 * 0700 directory. Creation is exclusive: of two processes starting together, both use the first.
 */
export function readOrCreateSecret(file: string, bytes: number): string {
  if (existsSync(file)) return readFileSync(file, 'utf8').trim();
  mkdirSync(path.dirname(file), { recursive: true, mode: 0o700 });
  const secret = randomBytes(bytes).toString('base64url');
  try {
    writeFileSync(file, secret + '\n', { mode: 0o600, flag: 'wx' });
  } catch (err) {
    // Another process started at the same moment and wrote it first: use theirs.
    if ((err as NodeJS.ErrnoException).code === 'EEXIST') return readFileSync(file, 'utf8').trim();
    throw err;
  }
  chmodSync(file, 0o600);
  return secret;
}
