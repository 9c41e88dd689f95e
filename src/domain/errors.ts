// Errors with stable codes. The HTTP layer maps them to statuses; nothing here knows HTTP.
export type ErrorCode =
  | 'bad_request'
  | 'validation_failed'
  | 'unauthorized'
  | 'forbidden'
  | 'not_found'
  | 'conflict'
  | 'payload_too_large'
  | 'rate_limited'
  | 'unavailable'
  | 'internal';

export class DomainError extends Error {
  constructor(
    readonly code: ErrorCode,
    message: string,
    readonly details?: unknown,
  ) {
    super(message);
    this.name = 'DomainError';
  }
}

export const notFound = (what: string) => new DomainError('not_found', `${what} not found`);
export const forbidden = (message = 'not allowed') => new DomainError('forbidden', message);
export const validation = (field: string, message: string) =>
  new DomainError('validation_failed', `${field}: ${message}`, [{ field, message }]);
