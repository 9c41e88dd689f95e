import { DomainError } from '../../../domain/errors.js';
import type { FastifyPluginAsyncTypebox } from '@fastify/type-provider-typebox';
import { Type } from 'typebox';
import type { AuthService } from '../../../services/auth.js';
import type { AdminService } from '../../../services/admin.js';
import type { VerificationService } from '../../../services/verification.js';
import { principal, requireAuth } from '../../plugins/auth.js';
import { presentSession, presentUser } from '../../presenters.js';
import { clearSessionCookie, setSessionCookie } from '../../plugins/session-cookie.js';
import { IdParams, SessionSchema, Timestamp, UserSchema, errorResponses } from '../../schemas.js';

const Email = Type.String({ format: 'email', minLength: 3, maxLength: 255 });
const Username = Type.String({ pattern: '^[A-Za-z0-9_.-]{3,100}$', description: '3-100 letters, digits, _ . -' });
const Password = Type.String({ minLength: 1, maxLength: 256 });
const Name = Type.Union([Type.String({ minLength: 1, maxLength: 100 }), Type.Null()]);
const TokenResponse = Type.Object({ token: Type.String(), expires_at: Timestamp, user: UserSchema });
// With ?cookie=true the token goes into the httpOnly cookie only, never into script-visible JSON.
const RegisterResponse = Type.Object({ message: Type.String() });
const REGISTERED =
  'Registration received. If this e-mail address and this username were not registered already, the account exists now: sign in with them. ' +
  'If you cannot, one of them was taken: sign in with the account you have, or register again with another username.';
const CookieLoginResponse = Type.Object({ cookie: Type.Literal(true), expires_at: Timestamp, user: UserSchema });

export const authRoutes: FastifyPluginAsyncTypebox<{ auth: AuthService; admin: AdminService; secureCookies?: boolean; verification?: VerificationService }> = async (app, { auth, admin, secureCookies = false, verification }) => {
  const client = (req: { ip: string; headers: Record<string, unknown> }) => ({
    ip: req.ip ?? null,
    userAgent: typeof req.headers['user-agent'] === 'string' ? req.headers['user-agent'] : null,
  });

  app.post('/auth/register', {
    schema: {
      tags: ['auth'],
      summary: 'Create an account (role user); then sign in with POST /auth/login',
      description: 'Answers 202 with the same body whether or not the e-mail address or the username was already registered, so that registration cannot be used to find out who has an account.',
      body: Type.Object(
        { email: Email, username: Username, password: Password, first_name: Type.Optional(Name), last_name: Type.Optional(Name) },
        { additionalProperties: false },
      ),
      response: { 202: RegisterResponse, ...errorResponses },
    },
    config: { rateLimitClass: 'login' },
  }, async (req, reply) => {
    const r = await auth.register(req.body, client(req));
    // Only a new account gets the link; a taken address gets the same answer and no mail.
    if (r.created && r.user) await verification?.sendAfterRegister(r.user);
    return reply.status(202).send({ message: REGISTERED });
  });

  app.post('/auth/login', {
    schema: {
      tags: ['auth'],
      summary: 'Sign in with email or username and password',
      description:
        'The session ends when unused for SESSION_TTL_SECONDS (idle, sliding) or at expires_at (absolute, SESSION_ABSOLUTE_TTL_SECONDS after login), whichever comes first. ' +
        'Throttled per IP, per account and IP (exponential back-off after 3 attempts) and per account (after RATE_LIMIT_LOGIN failures an hour, only addresses that signed in to it before may try): 429 with Retry-After. See docs/auth.md.',
      // "login" (email or username), or "email", or "username": what clients of the reference
      // system send. Exactly one of them.
      body: Type.Object(
        {
          login: Type.Optional(Type.String({ minLength: 1, maxLength: 255, description: 'email or username' })),
          email: Type.Optional(Type.String({ minLength: 1, maxLength: 255, description: 'instead of login' })),
          username: Type.Optional(Type.String({ minLength: 1, maxLength: 255, description: 'instead of login' })),
          password: Password,
        },
        { additionalProperties: false },
      ),
      querystring: Type.Object(
        { cookie: Type.Optional(Type.Boolean({ description: 'true: set the session as an httpOnly SameSite=Strict cookie (accunode_session) and leave the token out of the body' })) },
        { additionalProperties: false },
      ),
      response: { 200: Type.Union([TokenResponse, CookieLoginResponse]), ...errorResponses },
    },
    config: { rateLimitClass: 'login' },
  }, async (req, reply) => {
    const given = (['login', 'email', 'username'] as const).filter((k) => req.body[k] !== undefined);
    if (given.length !== 1) {
      throw new DomainError('validation_failed', given.length === 0 ? 'login: enter your e-mail address or username' : `${given.join(', ')}: send only one of login, email and username`, [
        { field: given[1] ?? 'login', message: given.length === 0 ? 'is required (or email, or username)' : 'only one of login, email and username' },
      ]);
    }
    const { user, session } = await auth.login(req.body[given[0]!]!, req.body.password, client(req));
    if (req.query.cookie) {
      setSessionCookie(reply, req, session.token, session.expires_at, secureCookies);
      return { cookie: true as const, expires_at: session.expires_at.toISOString(), user: presentUser(user) };
    }
    return { token: session.token, expires_at: session.expires_at.toISOString(), user: presentUser(user) };
  });

  app.post('/auth/logout', {
    schema: { tags: ['auth'], summary: 'End this session', response: { 204: Type.Null(), ...errorResponses } },
    preHandler: requireAuth,
  }, async (req, reply) => {
    await auth.logout(principal(req), req.ip);
    clearSessionCookie(reply, req, secureCookies);
    return reply.status(204).send(null);
  });

  app.post('/auth/logout-all', {
    schema: {
      tags: ['auth'],
      summary: 'Log out everywhere: end every session of the user, this one included',
      response: { 200: Type.Object({ revoked: Type.Integer() }), ...errorResponses },
    },
    preHandler: requireAuth,
  }, async (req, reply) => {
    const revoked = await auth.revokeAll(principal(req), req.ip);
    clearSessionCookie(reply, req, secureCookies);
    return { revoked };
  });

  app.get('/auth/me', {
    schema: { tags: ['auth'], summary: 'The signed-in user', response: { 200: UserSchema, ...errorResponses } },
    preHandler: requireAuth,
  }, async (req) => presentUser(await admin.getUser(principal(req), principal(req).userId)));

  app.post('/auth/change-password', {
    schema: {
      tags: ['auth'],
      summary: "Change the password; the user's other sessions end",
      body: Type.Object({ current_password: Password, new_password: Password }, { additionalProperties: false }),
      response: { 204: Type.Null(), ...errorResponses },
    },
    preHandler: requireAuth,
  }, async (req, reply) => {
    await auth.changePassword(principal(req), req.body.current_password, req.body.new_password, req.ip);
    return reply.status(204).send(null);
  });

  app.get('/auth/sessions', {
    schema: { tags: ['auth'], summary: "The user's active sessions", response: { 200: Type.Array(SessionSchema), ...errorResponses } },
    preHandler: requireAuth,
  }, async (req) => (await auth.listSessions(principal(req))).map(presentSession));

  app.delete('/auth/sessions/:id', {
    schema: { tags: ['auth'], summary: 'End one of the user\'s sessions', params: IdParams, response: { 204: Type.Null(), ...errorResponses } },
    preHandler: requireAuth,
  }, async (req, reply) => {
    await auth.revokeSession(principal(req), req.params.id, req.ip);
    return reply.status(204).send(null);
  });

  app.post('/auth/join', {
    schema: {
      tags: ['auth'],
      summary: 'Join an organization with its join token (email must be whitelisted)',
      body: Type.Object({ token: Type.String({ minLength: 10, maxLength: 200 }) }, { additionalProperties: false }),
      response: { 200: UserSchema, ...errorResponses },
    },
    preHandler: requireAuth,
  }, async (req) => presentUser(await auth.join(principal(req), req.body.token, req.ip)));
};
