// POST /auth/login takes {"login"}, {"email"} or {"username"} with the password (what clients of
// the reference system send); exactly one of them.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createWorldApp, TEST_PASSWORD, type WorldApp } from '../helpers/app.js';

let world: WorldApp;
beforeAll(async () => {
  world = await createWorldApp(['omA1']);
});
afterAll(async () => {
  await world?.close();
});

const login = (payload: object) => world.t.request({ method: 'POST', url: '/api/v1/auth/login', payload });

describe('login fields', () => {
  it('accepts login, email or username', async () => {
    for (const body of [{ login: 'omA1' }, { login: 'omA1@example.com' }, { email: 'omA1@example.com' }, { username: 'omA1' }]) {
      const r = await login({ ...body, password: TEST_PASSWORD });
      expect(r.statusCode, JSON.stringify(body)).toBe(200);
      expect(r.json().user.username).toBe('omA1');
    }
  });

  it('refuses none or several of them with a 422 naming the field, and a wrong password as before', async () => {
    const none = await login({ password: TEST_PASSWORD });
    expect(none.statusCode).toBe(422);
    expect(none.json().error.message).toBe('login: enter your e-mail address or username');
    const two = await login({ email: 'omA1@example.com', username: 'omA1', password: TEST_PASSWORD });
    expect(two.statusCode).toBe(422);
    expect(two.json().error.details[0].field).toBe('username');
    expect((await login({ email: 'omA1@example.com', password: 'wrong-password-1' })).statusCode).toBe(401);
  });
});
