/**
 * Cluster mode: the registry's credentials go to the engine through the
 * replicated key-value bucket callbox_auth (username and bcrypt hash; the
 * plain secret never leaves this process), which the auth agent on every
 * engine machine turns into the nodes' users (auth-agent.ts). A revocation
 * deletes the entry: the agents rewrite the nodes' users and reload them,
 * and the nodes close the revoked identity's connections.
 */
import { connect, type KV, type NatsConnection } from 'nats';
import { getLogger } from '../../shared/log.js';
import { waitFor } from '../../shared/wait.js';
import { bcryptHash, HUMAN_BCRYPT_COST, MACHINE_BCRYPT_COST } from '../auth/bcrypt.js';
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
      const kv = await nc
        .jetstream()
        .views.kv(AUTH_BUCKET, { replicas: o.replicas ?? Math.min(3, o.servers.length), history: 1 });
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
    await this.kv.put(authKey(cred.username), JSON.stringify(entry));
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

  async revoke(username: string): Promise<void> {
    await this.kv.delete(authKey(username));
  }

  /** Usernames in the bucket now. */
  async usernames(): Promise<string[]> {
    const out: string[] = [];
    for await (const key of await this.kv.keys()) {
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
