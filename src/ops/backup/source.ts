// Where the Backup-Stale alarm learns the last good backup: the manifests in BACKUP_DIR, as
// `backup create` (logical) and the nightly job write them.
import { readdirSync, readFileSync, statSync } from 'node:fs';
import path from 'node:path';
import type { BackupSource } from '../types.js';

/**
 * The default backup source: manifests (*.json with created_at) in BACKUP_DIR, as the backups
 * feature writes them; a manifest with a status other than ok/completed/verified/succeeded is not
 * a good backup. No directory or no manifest: 'unconfigured'.
 */
export function backupDirSource(dir: string): BackupSource {
  return {
    async lastGoodBackup() {
      let files: string[];
      try {
        files = readdirSync(dir, { recursive: true }).map(String).filter((f) => f.endsWith('.json'));
      } catch {
        return 'unconfigured';
      }
      let best: { at: Date; id: string } | null = null;
      let manifests = 0;
      for (const f of files) {
        try {
          const full = path.join(dir, f);
          if (!statSync(full).isFile()) continue;
          const m = JSON.parse(readFileSync(full, 'utf8')) as { created_at?: string; status?: string; id?: string };
          if (!m.created_at) continue;
          manifests++;
          if (m.status && !['ok', 'completed', 'verified', 'succeeded', 'success'].includes(m.status)) continue;
          const at = new Date(m.created_at);
          if (Number.isNaN(at.getTime())) continue;
          if (!best || at > best.at) best = { at, id: m.id ?? f };
        } catch {
          /* not a manifest */
        }
      }
      if (manifests === 0) return 'unconfigured';
      return best;
    },
  };
}
