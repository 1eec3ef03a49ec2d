/**
 * Sign-in sessions of the HTTP API (fleet/web): the ops users and their scrypt passwords (the credential
 * ops:<user>, the same the CLI logs in to MQTT with), a session id of 256 random bits in an HttpOnly,
 * SameSite=Strict cookie (Secure over TLS or when configured), stored hashed (fleet/store/web-sessions.ts),
 * ended after an idle time, at an absolute expiry, at sign-out, or when the user is disabled.
 *
 *   POST   /api/session {user, password}  sign in: a new session (any session the browser had is ended),
 *                                         answers {user, role, clinicId, csrfToken, expiresAt}
 *   GET    /api/session                   the session's user and a CSRF token (401 without a session)
 *   DELETE /api/session                   sign out (needs the CSRF token)
 *
 * Every other state-changing request (POST, PUT, PATCH, DELETE) needs the header x-csrf-token with a token
 * made from the session's CSRF secret (@fastify/csrf-protection). Sign-in is rate-limited per address and
 * user name (@fastify/rate-limit: 429 with Retry-After).
 */
import { createHash, randomBytes } from 'node:crypto';
import '@fastify/cookie';
import '@fastify/csrf-protection';
import '@fastify/swagger';
import type { FastifyInstance, FastifyReply, FastifyRequest } from 'fastify';
import { getLogger } from '../../shared/log.js';
import { Nullable, Strict, Type } from '../../shared/schema.js';
import { validate } from '../../shared/validate.js';
import { hashSecret, verifySecret } from '../auth/password.js';
import type { Caller, OpsApi } from '../ops-api.js';
import type { Store } from '../store/types.js';
import type { WebSession, WebSessionStore } from '../store/web-sessions.js';
import { ErrorBodySchema, HttpError } from './errors.js';

const log = getLogger('fleet:web');

export const SESSION_COOKIE = 'callbox_session';

export const SignInSchema = Strict({
  user: Type.String({ minLength: 1, maxLength: 64, description: 'ops user name (as in ops:<name>)' }),
  password: Type.String({ minLength: 1, maxLength: 1024 }),
});

export const SessionSchema = Type.Object({
  user: Type.String(),
  role: Type.Union([Type.Literal('viewer'), Type.Literal('operator'), Type.Literal('admin'), Type.Literal('clinic')]),
  clinicId: Nullable(Type.String()),
  csrfToken: Type.String({ description: 'send it as the x-csrf-token header with every POST, PUT, PATCH, DELETE' }),
  expiresAt: Type.String({ description: 'the absolute expiry (an idle session ends sooner)' }),
});

export interface SessionOptions {
  idleMs: number;
  absoluteMs: number;
  secureCookies: boolean;
  loginPerMinute: number;
}

declare module 'fastify' {
  interface FastifyRequest {
    /** The signed-in caller (after the session hook), or null. */
    caller: Caller | null;
    /** The session's CSRF secret where @fastify/csrf-protection looks for it (its '@fastify/session' mode). */
    session: { _csrf?: string } | null;
    webSession: WebSession | null;
  }
}

export function hashSessionId(id: string): string {
  return createHash('sha256').update(id).digest('base64url');
}

/** A hash to check wrong user names against, so that unknown and known names cost the same time. */
let decoy: Promise<string> | undefined;

export class Sessions {
  /** Told when a session ends by sign-out or sign-in over it (the live stream closes its streams). */
  onEnded: (idHash: string) => void = () => undefined;

  constructor(
    private readonly store: Store,
    private readonly sessions: WebSessionStore,
    private readonly ops: OpsApi,
    private readonly opts: SessionOptions,
  ) {}

  /** The session of a request (cookie), checked for expiry and its user; null when there is none. */
  async resolve(req: FastifyRequest): Promise<void> {
    req.caller = null;
    req.session = null;
    req.webSession = null;
    const id = req.cookies?.[SESSION_COOKIE];
    if (!id || id.length > 100) return;
    const s = await this.sessions.get(hashSessionId(id));
    if (!s) return;
    const now = Date.now();
    if (now >= Date.parse(s.expiresAt) || now - Date.parse(s.lastSeenAt) >= this.opts.idleMs) {
      await this.sessions.revoke(s.idHash);
      return;
    }
    let caller: Caller;
    try {
      caller = await this.ops.identify(s.user);
    } catch {
      await this.sessions.revoke(s.idHash); // the user was disabled or removed
      return;
    }
    // Written at most once a minute: a dashboard's polling costs no write per request.
    if (now - Date.parse(s.lastSeenAt) > 60_000) await this.sessions.touch(s.idHash, new Date(now).toISOString());
    req.caller = caller;
    req.session = { _csrf: s.csrfSecret };
    req.webSession = s;
  }

  private cookie(reply: FastifyReply, id: string, secure: boolean): void {
    reply.setCookie(SESSION_COOKIE, id, {
      path: '/',
      httpOnly: true,
      sameSite: 'strict',
      secure,
      maxAge: Math.floor(this.opts.absoluteMs / 1000),
    });
  }

  answer(req: FastifyRequest, reply: FastifyReply) {
    const caller = req.caller as Caller;
    return {
      user: caller.user,
      role: caller.role,
      clinicId: caller.clinicId,
      csrfToken: reply.generateCsrf(),
      expiresAt: (req.webSession as WebSession).expiresAt,
    };
  }

  routes(app: FastifyInstance, secure: boolean): void {
    const loginLimit = {
      max: this.opts.loginPerMinute,
      timeWindow: 60_000,
      hook: 'preHandler' as const,
      keyGenerator: (req: FastifyRequest) => {
        const user = (req.body as { user?: unknown } | undefined)?.user;
        return `${req.ip}|${typeof user === 'string' ? user.toLowerCase().slice(0, 64) : ''}`;
      },
    };
    app.post(
      '/api/session',
      {
        config: { rateLimit: loginLimit },
        schema: {
          tags: ['session'],
          summary: 'sign in',
          body: SignInSchema,
          response: { 200: SessionSchema, 400: ErrorBodySchema, 401: ErrorBodySchema, 429: ErrorBodySchema },
        },
      },
      async (req, reply) => {
        const { user, password } = validate(SignInSchema, req.body, 'sign-in');
        const found = await this.store.getOpsUser(user);
        const cred = found ? await this.store.getCredential(`ops:${user}`) : undefined;
        decoy ??= hashSecret(randomBytes(16).toString('hex'));
        const ok = await verifySecret(password, cred && !cred.revokedAt ? cred.hash : await decoy);
        if (!ok || !found || found.disabledAt) {
          log.warn({ user, ip: req.ip }, 'sign-in refused');
          throw new HttpError(401, 'SignInFailed', 'wrong user name or password, or the user is disabled');
        }
        // Session fixation: whatever session the browser brought ends; the new one has a fresh id.
        const old = req.cookies?.[SESSION_COOKIE];
        if (old && old.length <= 100) {
          await this.sessions.revoke(hashSessionId(old));
          this.onEnded(hashSessionId(old));
        }
        const id = randomBytes(32).toString('base64url');
        const now = Date.now();
        req.session = {};
        const csrfToken = reply.generateCsrf(); // makes the session's CSRF secret in req.session._csrf
        const s: WebSession = {
          idHash: hashSessionId(id),
          user,
          csrfSecret: req.session._csrf as string,
          createdAt: new Date(now).toISOString(),
          lastSeenAt: new Date(now).toISOString(),
          expiresAt: new Date(now + this.opts.absoluteMs).toISOString(),
          ip: req.ip,
          userAgent: (req.headers['user-agent'] ?? '').slice(0, 200) || null,
        };
        await this.sessions.create(s);
        await this.store.appendAudit({
          actor: `ops:${user}`,
          action: 'session.signIn',
          target: `user:${user}`,
          before: null,
          after: { ip: req.ip, expiresAt: s.expiresAt },
        });
        this.cookie(reply, id, secure);
        return {
          user,
          role: found.role,
          clinicId: found.clinicId ?? null,
          csrfToken,
          expiresAt: s.expiresAt,
        };
      },
    );
    app.get(
      '/api/session',
      {
        schema: {
          tags: ['session'],
          summary: 'the signed-in user and a CSRF token',
          response: { 200: SessionSchema, 401: ErrorBodySchema },
        },
        preHandler: requireSession,
      },
      async (req, reply) => this.answer(req, reply),
    );
    app.delete(
      '/api/session',
      {
        schema: {
          tags: ['session'],
          summary: 'sign out',
          response: { 204: Type.Null(), 401: ErrorBodySchema, 403: ErrorBodySchema },
        },
        preHandler: [requireSession, app.csrfProtection],
      },
      async (req, reply) => {
        const s = req.webSession as WebSession;
        await this.sessions.revoke(s.idHash);
        this.onEnded(s.idHash);
        await this.store.appendAudit({
          actor: `ops:${s.user}`,
          action: 'session.signOut',
          target: `user:${s.user}`,
          before: null,
          after: null,
        });
        reply.clearCookie(SESSION_COOKIE, { path: '/' });
        return reply.code(204).send();
      },
    );
  }
}

/** preHandler: 401 NoSession without a valid session. */
export async function requireSession(req: FastifyRequest): Promise<void> {
  if (!req.caller) {
    throw new HttpError(401, 'NoSession', 'sign in first: POST /api/session {user, password}');
  }
}
