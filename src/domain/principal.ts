import type { Role } from './access.js';

/** Who is calling: set on every authenticated request (request.principal) and job payload. */
export interface Principal {
  userId: string;
  role: Role;
  tenantId: string | null;
  organizationId: string | null;
  /** user_sessions.id of the session that authenticated the request (absent for jobs/CLI). */
  sessionId?: string;
}
