import type { FastifyPluginAsyncTypebox } from '@fastify/type-provider-typebox';
import { Type } from 'typebox';
import type { VerificationService } from '../../../services/verification.js';
import { principal, requireAuth } from '../../plugins/auth.js';
import { Timestamp, errorResponses } from '../../schemas.js';

/** E-mail verification (issue 13): the link's target and the resend button. */
export const verifyRoutes: FastifyPluginAsyncTypebox<{ verification: VerificationService }> = async (app, { verification }) => {
  app.post('/auth/verify', {
    schema: {
      tags: ['auth'],
      summary: 'Confirm an e-mail address with the token from the verification e-mail (no sign-in needed; each link works once, until it expires)',
      security: [],
      body: Type.Object({ token: Type.String({ minLength: 1, maxLength: 200, description: 'the token= part of the link in the e-mail' }) }, { additionalProperties: false }),
      response: { 200: Type.Object({ verified: Type.Literal(true) }), ...errorResponses },
    },
    // Anonymous, so counted per IP like login: guessing tokens is as slow as guessing passwords.
    config: { rateLimitClass: 'login' },
  }, async (req) => {
    await verification.verify(req.body.token, req.ip);
    return { verified: true as const };
  });

  app.post('/auth/verify/resend', {
    schema: {
      tags: ['auth'],
      summary: 'Send a new verification e-mail to the signed-in user (earlier links stop working; RATE_LIMIT_VERIFY_RESEND per hour)',
      response: { 202: Type.Object({ sent: Type.Literal(true), expires_at: Timestamp }), ...errorResponses },
    },
    preHandler: requireAuth,
  }, async (req, reply) => {
    const expiresAt = await verification.resend(principal(req));
    return reply.status(202).send({ sent: true as const, expires_at: expiresAt.toISOString() });
  });
};
