import { createHash, createHmac, pbkdf2Sync, randomBytes } from 'node:crypto';
import { chmodSync, existsSync, mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import type { Sql } from './pool.js';

export const APP_ROLES = ['app_user', 'readonly_user', 'analytics_user', 'monitoring_user', 'maintenance_user'] as const;
export type AppRole = (typeof APP_ROLES)[number];

export const ROLE_PASSWORD_VARIABLE: Record<AppRole, string> = {
  app_user: 'APP_USER_PASSWORD',
  readonly_user: 'READONLY_USER_PASSWORD',
  analytics_user: 'ANALYTICS_USER_PASSWORD',
  monitoring_user: 'MONITORING_USER_PASSWORD',
  maintenance_user: 'MAINTENANCE_USER_PASSWORD',
};

/**
 * The SCRAM-SHA-256 verifier PostgreSQL stores for a password (RFC 5802/7677, the format of
 * pg_authid.rolpassword). Sending the verifier instead of the password means the password never
 * crosses the wire and never reaches a statement log (log_statement = 'mod' logs ALTER ROLE).
 */
export function scramSha256Verifier(password: string, salt: Buffer = randomBytes(16), iterations = 4096): string {
  // PostgreSQL runs SASLprep on the password; for ASCII passwords (all we generate) it is the identity.
  const salted = pbkdf2Sync(password.normalize('NFKC'), salt, iterations, 32, 'sha256');
  const clientKey = createHmac('sha256', salted).update('Client Key').digest();
  const storedKey = createHash('sha256').update(clientKey).digest();
  const serverKey = createHmac('sha256', salted).update('Server Key').digest();
  return `SCRAM-SHA-256$${iterations}:${salt.toString('base64')}$${storedKey.toString('base64')}:${serverKey.toString('base64')}`;
}

export function generatePassword(): string {
  return randomBytes(24).toString('base64url');
}

/**
 * A role's password: from config when given, else generated once and kept 0600 under the data
 * directory so later starts (and other processes on this machine) reuse it.
 */
export function resolveRolePassword(role: AppRole, configured: string | undefined, dataDir: string): string {
  if (configured) return configured;
  const dir = path.join(dataDir, 'secrets');
  const file = path.join(dir, `${role}.password`);
  if (existsSync(file)) return readFileSync(file, 'utf8').trim();
  mkdirSync(dir, { recursive: true, mode: 0o700 });
  const pw = generatePassword();
  writeFileSync(file, pw + '\n', { mode: 0o600, flag: 'wx' });
  chmodSync(file, 0o600);
  return pw;
}

/**
 * Gives the roles LOGIN and their passwords (as verifiers). The roles themselves and their
 * grants come from the migrations; this is the part that needs secrets.
 */
export async function applyRolePasswords(adminSql: Sql, passwords: Partial<Record<AppRole, string>>): Promise<AppRole[]> {
  const done: AppRole[] = [];
  for (const role of APP_ROLES) {
    const pw = passwords[role];
    if (!pw) continue;
    const [exists] = await adminSql`select 1 from pg_roles where rolname = ${role}`;
    const verifier = scramSha256Verifier(pw);
    // Identifiers and the verifier are ours (fixed names, base64 text), never user input.
    const stmt = `${exists ? 'ALTER' : 'CREATE'} ROLE ${role} WITH LOGIN PASSWORD '${verifier}'`;
    await adminSql.unsafe(stmt);
    done.push(role);
  }
  // Default connection limits keep one misbehaving role from exhausting max_connections.
  await adminSql.unsafe('ALTER ROLE monitoring_user CONNECTION LIMIT 5');
  return done;
}
