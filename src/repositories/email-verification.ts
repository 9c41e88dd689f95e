// E-mail verification links (migration 0043): the signing key and the database functions that
// issue and consume a link, each doing its checks inside the function (only hashes are stored).
import type { Sql, TxSql } from '../db/pool.js';

/** The key links are signed with (kept in the database, readable only through this function). */
export async function emailVerifyKey(sql: Sql): Promise<Buffer | null> {
  const [r] = await sql<{ k: Buffer | null }[]>`select app_email_verify_key() as k`;
  return r?.k ?? null;
}

/** Records a link for the caller; the address it goes to, or whether it is verified already. */
export async function issueEmailVerification(tx: TxSql, tokenHash: string, ttlSeconds: number): Promise<{ email: string; already_verified: boolean } | null> {
  const [r] = await tx<{ email: string; already_verified: boolean }[]>`select * from app_issue_email_verification(${tokenHash}, ${ttlSeconds}::int)`;
  return r ?? null;
}

export async function consumeEmailVerification(tx: TxSql, tokenHash: string): Promise<{ user_id: string | null; outcome: string } | null> {
  const [r] = await tx<{ user_id: string | null; outcome: string }[]>`select * from app_verify_email(${tokenHash})`;
  return r ?? null;
}
