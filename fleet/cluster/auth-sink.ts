/**
 * Cluster mode: the registry's credentials go to the engine through the
 * replicated key-value bucket callbox_auth (username and bcrypt hash; the
 * plain secret never leaves this process), which the auth agent on every
 * engine machine turns into the nodes' users (auth-agent.ts). A revocation
 * deletes the entry: the agents rewrite the nodes' users and reload them,
 * and the nodes close the revoked identity's connections.
 */
import { connect, type KV, type NatsConnection } from 'nats';
import { Backoff, sleep } from '../../shared/backoff.js';
import { getLogger } from '../../shared/log.js';
import { waitFor } from '../../shared/wait.js';
import { bcryptHash, bcryptHashes, HUMAN_BCRYPT_COST, MACHINE_BCRYPT_COST } from '../auth/bcrypt.js';
import type { CredentialSink } from '../registry.js';
import type { Credential } from '../store/types.js';
import { AUTH_BUCKET, type AuthEntry, authKey } from './auth-agent.js';

const log = getLogger('fleet:cluster:auth-sink');

export interface NatsAuthSinkOptions {
  servers: string[];
  user: string;
  password: string;
  /** Replicas of the bucket when this sink creates it (at most the number of nodes). */
  replicas?: number;
  /** put() waits this long at most for every node to accept the new login (default 10 s). */
  applyTimeoutMs?: number;
  /** A bucket write that meets a leader election is tried again for this long (default 20 s). */
  retryForMs?: number;
}

/**
 * JetStream answers these while a stream has no leader (just after the
 * engine started, or for a few seconds after a node died): the write is
 * tried again. Anything else (permissions, a bad request) fails at once.
 */
export function transientJetStreamError(e: unknown): boolean {
  const err = e as { code?: unknown; message?: unknown; api_error?: { err_code?: number } };
  const code = String(err?.code ?? '');
  const message = String(err?.message ?? '').toLowerCase();
  return (
    code === 'TIMEOUT' ||
    code === '503' ||
    err?.api_error?.err_code === 10008 || // JetStream system temporarily unavailable
    message.includes('no responders') ||
    message.includes('temporarily unavailable') ||
    message.includes('timeout')
  );
}

/** Run a bucket write, again after a short wait while JetStream elects a leader (transientJetStreamError). */
export async function retryJetStream<T>(what: string, fn: () => Promise<T>, retryForMs = 20_000): Promise<T> {
  const end = Date.now() + retryForMs;
  const backoff = new Backoff({ initial: 100, max: 2000, jitter: 'equal' });
  for (;;) {
    try {
      return await fn();
    } catch (e) {
      if (!transientJetStreamError(e) || Date.now() >= end) throw e;
      const wait = backoff.next();
      log.warn({ what, err: (e as Error).message, retryInMs: wait }, 'engine busy (leader election?); trying again');
      await sleep(wait);
    }
  }
}

export class NatsAuthSink implements CredentialSink {
  private constructor(
    private readonly nc: NatsConnection,
    private readonly kv: KV,
    private readonly o: NatsAuthSinkOptions,
  ) {}

  static async open(o: NatsAuthSinkOptions): Promise<NatsAuthSink> {
    const nc = await connect({
      servers: o.servers,
      user: o.user,
      pass: o.password,
      name: `callbox-${o.user}-auth`,
      maxReconnectAttempts: -1,
      reconnectTimeWait: 250,
    });
    try {
      const kv = await retryJetStream(
        `the ${AUTH_BUCKET} bucket`,
        () =>
          nc.jetstream().views.kv(AUTH_BUCKET, { replicas: o.replicas ?? Math.min(3, o.servers.length), history: 1 }),
        o.retryForMs,
      );
      return new NatsAuthSink(nc, kv, o);
    } catch (e) {
      await nc.close();
      throw e;
    }
  }

  async put(cred: Credential, secret: string): Promise<void> {
    // Device credentials are 256 random bits; claim secrets and ops passwords are printed or chosen.
    const hash = await bcryptHash(
      secret,
      cred.kind === 'device' || cred.kind === 'fleet' ? MACHINE_BCRYPT_COST : HUMAN_BCRYPT_COST,
    );
    const entry: AuthEntry = { username: cred.username, hash };
    await this.write(`the login of ${cred.username}`, () => this.kv.put(authKey(cred.username), JSON.stringify(entry)));
    await this.accepted(cred.username, secret);
  }

  /**
   * Wait until every node lets the new login in (the agents have rewritten
   * and reloaded them), so the box or user handed this secret is not
   * refused on its first try; on timeout a warning (it will be let in a
   * little later, or an agent is down).
   */
  private async accepted(username: string, secret: string): Promise<void> {
    const tryNode = async (server: string) => {
      try {
        const c = await connect({ servers: server, user: username, pass: secret, reconnect: false, timeout: 2000 });
        await c.close();
        return true;
      } catch {
        return false;
      }
    };
    const pending = new Set(this.o.servers);
    try {
      await waitFor(
        async () => {
          for (const s of [...pending]) if (await tryNode(s)) pending.delete(s);
          return pending.size === 0;
        },
        `every engine node to accept ${username}`,
        { timeoutMs: this.o.applyTimeoutMs ?? 10_000, intervalMs: 50 },
      );
    } catch {
      log.warn({ username, nodes: [...pending] }, 'engine nodes do not accept the new login yet (auth agent down?)');
    }
  }

  /**
   * Many machine credentials at once (factory provisioning in bulk, the
   * benchmarks): one hashing process, the bucket written in parallel, and
   * one wait, for the last (the agents apply the bucket in order).
   */
  async putMany(creds: readonly { cred: Credential; secret: string }[]): Promise<void> {
    if (creds.length === 0) return;
    const hashes = await bcryptHashes(
      creds.map((c) => c.secret),
      MACHINE_BCRYPT_COST,
    );
    const entries = creds.map((c, i) => ({ username: c.cred.username, hash: hashes[i] as string }));
    for (let i = 0; i < entries.length; i += 256) {
      await Promise.all(
        entries
          .slice(i, i + 256)
          .map((e) =>
            this.write(`the login of ${e.username}`, () =>
              this.kv.put(authKey(e.username), JSON.stringify(e satisfies AuthEntry)),
            ),
          ),
      );
    }
    const last = creds[creds.length - 1] as { cred: Credential; secret: string };
    await this.accepted(last.cred.username, last.secret);
  }

  async revoke(username: string): Promise<void> {
    await this.write(`the revocation of ${username}`, () => this.kv.delete(authKey(username)));
  }

  private write<T>(what: string, fn: () => Promise<T>): Promise<T> {
    return retryJetStream(what, fn, this.o.retryForMs);
  }

  /** Usernames in the bucket now. */
  async usernames(): Promise<string[]> {
    // The keys first, then the entries: a get() inside the keys iterator ended it after the first key.
    const keys: string[] = [];
    for await (const key of await this.kv.keys()) keys.push(key);
    const out: string[] = [];
    for (const key of keys) {
      const e = await this.kv.get(key);
      if (e && e.operation === 'PUT') out.push(e.json<AuthEntry>().username);
    }
    return out;
  }

  /**
   * Remove from the bucket every identity the store no longer holds active
   * (revoked while this fleet was away). Active credentials missing from the
   * bucket cannot be added (their secrets are not kept): they are returned,
   * to be reissued.
   */
  async reconcile(active: readonly string[]): Promise<{ removed: number; missing: string[] }> {
    const have = new Set(await this.usernames());
    const want = new Set(active);
    let removed = 0;
    for (const u of have) {
      if (!want.has(u)) {
        await this.revoke(u);
        removed++;
      }
    }
    const missing = active.filter((u) => !have.has(u));
    if (removed || missing.length)
      log.info({ removed, missing: missing.length }, 'engine users reconciled with the store');
    return { removed, missing };
  }

  async close(): Promise<void> {
    await this.nc.drain().catch(() => this.nc.close());
  }
}
