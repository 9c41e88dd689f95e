// Bootstrap commands: an operator makes the first super admin, tenants and organizations on the
// owner connection (there is no user yet for row-level security to key on).
import { readFileSync } from 'node:fs';
import type { Command } from 'commander';
import type { CliContext } from './context.js';
import { ROLES, type Role } from '../domain/access.js';
import { hashPassword } from '../services/passwords.js';
import { passwordProblem } from '../services/auth.js';
import type { Sql } from '../db/pool.js';
import { formatTable, printResult } from './output.js';
import * as boot from '../repositories/bootstrap.js';

async function withOwner<T>(ctx: CliContext, fn: (sql: Sql) => Promise<T>): Promise<T> {
  const db = await ctx.database();
  try {
    return await fn(db.adminSql);
  } finally {
    await db.close();
  }
}

class UsageError extends Error {}

export function registerIdentityCommands(program: Command, ctx: CliContext): void {
  const tenant = program.command('tenant').description('tenants (bootstrap, owner connection)');
  tenant
    .command('create')
    .requiredOption('--name <name>', 'tenant name')
    .option('--domain <domain>', 'e-mail domain')
    .option('--json', 'print JSON')
    .action(async (o: { name: string; domain?: string; json?: boolean }) => {
      const row = await withOwner(ctx, (sql) => boot.createTenant(sql, { name: o.name, domain: o.domain ?? null }));
      printResult(o.json, row, () => formatTable([row!]));
    });

  const org = program.command('org').description('organizations (bootstrap, owner connection)');
  org
    .command('create')
    .requiredOption('--tenant <id>', 'tenant id')
    .requiredOption('--name <name>', 'organization name')
    .option('--description <text>', 'description')
    .option('--max-members <n>', 'member limit', '100')
    .option('--json', 'print JSON')
    .action(async (o: { tenant: string; name: string; description?: string; maxMembers: string; json?: boolean }) => {
      const row = await withOwner(ctx, async (sql) => {
        if (!(await boot.tenantById(sql, o.tenant))) throw new UsageError(`tenant ${o.tenant} not found`);
        return boot.createOrganization(sql, { tenantId: o.tenant, name: o.name, description: o.description ?? null, maxMembers: Number(o.maxMembers) });
      });
      printResult(o.json, row, () => formatTable([row!]));
    });

  const user = program.command('user').description('users (bootstrap, owner connection)');
  user
    .command('create')
    .requiredOption('--email <email>', 'e-mail address')
    .requiredOption('--username <name>', 'user name')
    .option('--password <password>', 'password (prefer --password-file)')
    .option('--password-file <file>', 'read the password from a file')
    .requiredOption('--role <role>', ROLES.join(' | '))
    .option('--org <id>', 'organization id (its tenant is used)')
    .option('--tenant <id>', 'tenant id (for tenant admins)')
    .option('--json', 'print JSON')
    .action(async (o: { email: string; username: string; password?: string; passwordFile?: string; role: string; org?: string; tenant?: string; json?: boolean }) => {
      if (!(ROLES as readonly string[]).includes(o.role)) throw new UsageError(`--role must be one of ${ROLES.join(', ')}`);
      const password = o.passwordFile ? readFileSync(o.passwordFile, 'utf8').replace(/\r?\n$/, '') : o.password;
      if (!password) throw new UsageError('give --password or --password-file');
      const problem = passwordProblem(password, o.email.split('@')[0], o.username);
      if (problem) throw new UsageError(`password ${problem}`);
      const role = o.role as Role;
      const hash = await hashPassword(password);
      const row = await withOwner(ctx, (sql) =>
        sql.begin(async (tx) => {
          let tenantId = o.tenant ?? null;
          if (o.org) {
            tenantId = await boot.organizationTenant(tx, o.org);
            if (!tenantId) throw new UsageError(`organization ${o.org} not found`);
          }
          if ((role === 'org_member' || role === 'org_admin') && !o.org) throw new UsageError(`--org is required for ${role}`);
          if (role === 'tenant_admin' && !tenantId) throw new UsageError('--tenant is required for tenant_admin');
          return boot.createUserByOperator(tx, { tenantId, organizationId: o.org ?? null, email: o.email, username: o.username, role, passwordHash: hash });
        }),
      );
      printResult(o.json, row, () => formatTable([row]));
    });

  // Production without SMTP_URL cannot mail links: an operator who has confirmed the address
  // some other way marks it verified (audited as the operator's act).
  user
    .command('verify')
    .description('mark an e-mail address as verified (when the verification e-mail cannot reach the user)')
    .requiredOption('--email <email>', 'e-mail address of the account')
    .option('--json', 'print JSON')
    .action(async (o: { email: string; json?: boolean }) => {
      const row = await withOwner(ctx, (sql) =>
        sql.begin(async (tx) => {
          const u = await boot.verifyByOperator(tx, o.email);
          if (!u) throw new UsageError(`no account with the e-mail address ${o.email}`);
          return u;
        }),
      );
      printResult(o.json, row, () => formatTable([row]));
    });
}

export { UsageError };
