// Encryption at rest for backup files: AES-256-GCM, streamed, authenticated.
//
// File layout: "ACNENC1\n" (8 bytes) | salt (16) | iv (12) | ciphertext | tag (16).
// The key is scrypt(BACKUP_ENCRYPTION_KEY, salt) — or the key itself when it is 64 hex digits —
// so every file has its own key. Decryption checks the tag before anything is trusted: a flipped
// byte, a truncation or a wrong key fails `final()`, and callers restore only from a file that
// decrypted completely (into a temporary file that is removed afterwards).
import { createCipheriv, createDecipheriv, randomBytes, scryptSync } from 'node:crypto';
import { createReadStream, createWriteStream, closeSync, openSync, readSync, statSync } from 'node:fs';
import { Transform, type Writable } from 'node:stream';
import { pipeline } from 'node:stream/promises';

const ENC_MAGIC = Buffer.from('ACNENC1\n');
const SALT = 16;
const IV = 12;
const TAG = 16;
const HEADER = ENC_MAGIC.length + SALT + IV;

function deriveKey(secret: string, salt: Buffer): Buffer {
  if (/^[0-9a-fA-F]{64}$/.test(secret)) return Buffer.from(secret, 'hex');
  return scryptSync(secret, salt, 32);
}

/** A Transform that encrypts what flows through it into the layout above. */
export function encryptStream(secret: string): Transform {
  const salt = randomBytes(SALT);
  const iv = randomBytes(IV);
  const cipher = createCipheriv('aes-256-gcm', deriveKey(secret, salt), iv);
  let headerSent = false;
  const header = () => {
    if (!headerSent) {
      headerSent = true;
      return Buffer.concat([ENC_MAGIC, salt, iv]);
    }
    return null;
  };
  return new Transform({
    transform(chunk: Buffer, _enc, cb) {
      const h = header();
      if (h) this.push(h);
      cb(null, cipher.update(chunk));
    },
    flush(cb) {
      const h = header();
      if (h) this.push(h);
      const f = cipher.final();
      if (f.length) this.push(f);
      this.push(cipher.getAuthTag());
      cb();
    },
  });
}

export class BackupIntegrityError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'BackupIntegrityError';
  }
}

/**
 * Decrypts `file` into `dest` (a path or a stream). Rejects with BackupIntegrityError when the
 * file is truncated, altered or the key is wrong; the caller must then discard what was written.
 */
export async function decryptFile(file: string, secret: string, dest: string | Writable): Promise<void> {
  const size = statSync(file).size;
  if (size < HEADER + TAG) throw new BackupIntegrityError(`${file} is truncated (${size} bytes, shorter than the encryption header)`);
  const fd = openSync(file, 'r');
  const head = Buffer.alloc(HEADER);
  const tag = Buffer.alloc(TAG);
  try {
    readSync(fd, head, 0, HEADER, 0);
    readSync(fd, tag, 0, TAG, size - TAG);
  } finally {
    closeSync(fd);
  }
  if (!head.subarray(0, ENC_MAGIC.length).equals(ENC_MAGIC)) throw new BackupIntegrityError(`${file} is not an AccuNode encrypted backup`);
  const salt = head.subarray(ENC_MAGIC.length, ENC_MAGIC.length + SALT);
  const iv = head.subarray(ENC_MAGIC.length + SALT, HEADER);
  const decipher = createDecipheriv('aes-256-gcm', deriveKey(secret, salt), iv);
  decipher.setAuthTag(tag);
  const out = typeof dest === 'string' ? createWriteStream(dest, { mode: 0o600 }) : dest;
  try {
    if (size - TAG - 1 >= HEADER) await pipeline(createReadStream(file, { start: HEADER, end: size - TAG - 1 }), decipher, out);
    else await pipeline(async function* () {}, decipher, out);
  } catch (err) {
    const msg = (err as Error).message;
    if (/auth|unable to authenticate/i.test(msg)) throw new BackupIntegrityError(`${file} failed authentication: it was altered or truncated, or BACKUP_ENCRYPTION_KEY is not the key it was written with`);
    throw err;
  }
}
