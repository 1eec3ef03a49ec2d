/**
 * The engine's auth agent (cluster mode), one per engine machine: it keeps
 * the nodes' user lists in step with the fleet's registry without restarting
 * them. The fleet writes each credential (username and bcrypt hash, never
 * the secret) into the replicated JetStream key-value bucket callbox_auth
 * (NatsAuthSink) and deletes it on revocation; the agent watches the bucket,
 * writes each node's auth.conf (its fixed users plus one user per
 * credential, with the contract's permissions: nats-acl.ts) and makes the
 * node reload it (SIGHUP to the pid in its pid file). On reload nats-server
 * closes the connections of users no longer listed: a revoked box is cut
 * off at once.
 */
import { readFileSync, renameSync, writeFileSync } from 'node:fs';
import { connect, type KV, type KvEntry, type NatsConnection } from 'nats';
import { getLogger } from '../../shared/log.js';
import { type NatsPermissions, type NatsUser, natsUserFor, renderAuthorization } from './nats-acl.js';

const log = getLogger('fleet:cluster:auth-agent');

export const AUTH_BUCKET = 'callbox_auth';
export const AUTH_AGENT_USER = 'engine:auth-agent';

/** The agent reads the bucket only. */
export function agentPermissions(): NatsPermissions {
  return {
    publish: { allow: ['$JS.API.INFO', `$JS.API.STREAM.INFO.KV_${AUTH_BUCKET}`, '$JS.API.CONSUMER.>', '$JS.FC.>'] },
    subscribe: { allow: ['_INBOX.>'] },
  };
}

/** A credential as the fleet stores it in the bucket. */
export interface AuthEntry {
  username: string;
  /** bcrypt hash of the secret. */
  hash: string;
}

/** Bucket key of a username (usernames hold ":", which keys may not). */
export function authKey(username: string): string {
  return `u_${Buffer.from(username).toString('base64url')}`;
}

export interface AuthTarget {
  /** The node's auth.conf (included by its configuration). */
  authFile: string;
  /** The node's pid file (pid_file in its configuration). */
  pidFile: string;
}

export interface AuthAgentOptions {
  servers: string[];
  user: string;
  password: string;
  /** Users always listed (the fleet's own, the agent's). */
  staticUsers: NatsUser[];
  targets: AuthTarget[];
  /** Gather changes this long before rewriting (a provisioning burst: one reload). */
  debounceMs?: number;
}

export interface AuthAgent {
  /** Users from the bucket now listed. */
  users(): number;
  /** Times the files were written and the nodes told to reload. */
  reloads(): number;
  stop(): Promise<void>;
}

export async function startAuthAgent(o: AuthAgentOptions): Promise<AuthAgent> {
  const nc: NatsConnection = await connect({
    servers: o.servers,
    user: o.user,
    pass: o.password,
    name: 'callbox-auth-agent',
    maxReconnectAttempts: -1,
    reconnectTimeWait: 250,
  });
  // The first fleet worker creates the bucket: an agent started before it waits.
  let kv: KV | undefined;
  for (let tries = 0; !kv; tries++) {
    try {
      kv = await nc.jetstream().views.kv(AUTH_BUCKET, { bindOnly: true });
    } catch (err) {
      if (nc.isClosed()) throw err;
      if (tries === 0) log.warn({ err }, `no ${AUTH_BUCKET} bucket yet (no fleet worker has started): waiting for it`);
      await new Promise((r) => setTimeout(r, 1000));
    }
  }
  const entries = new Map<string, NatsUser>();
  let reloads = 0;
  let timer: NodeJS.Timeout | undefined;
  let initialized = false;
  const apply = () => {
    timer = undefined;
    const text = renderAuthorization([...o.staticUsers, ...entries.values()]);
    for (const t of o.targets) {
      const tmp = `${t.authFile}.tmp`;
      writeFileSync(tmp, text, { mode: 0o600 });
      renameSync(tmp, t.authFile);
      try {
        const pid = Number(readFileSync(t.pidFile, 'utf8').trim());
        process.kill(pid, 'SIGHUP');
      } catch (err) {
        // A node that is down reads the new file when it starts.
        log.debug({ err, pidFile: t.pidFile }, 'node not reloaded (not running?)');
      }
    }
    reloads++;
    log.info({ users: entries.size, reloads }, 'engine users written and reloaded');
  };
  const schedule = () => {
    if (!initialized || timer) return;
    timer = setTimeout(apply, o.debounceMs ?? 50);
  };
  const onEntry = (e: KvEntry) => {
    if (e.operation === 'PUT') {
      try {
        const v = e.json<AuthEntry>();
        const u = natsUserFor(v.username, v.hash);
        if (u && authKey(v.username) === e.key) entries.set(e.key, u);
        else log.warn({ key: e.key }, 'bucket entry names no identity the contract admits: left out');
      } catch (err) {
        log.warn({ err, key: e.key }, 'unreadable bucket entry: left out');
      }
    } else {
      entries.delete(e.key);
    }
    schedule();
  };
  const watch = await kv.watch({
    initializedFn: () => {
      initialized = true;
      apply();
    },
  });
  const loop = (async () => {
    for await (const e of watch) onEntry(e);
  })();
  return {
    users: () => entries.size,
    reloads: () => reloads,
    stop: async () => {
      clearTimeout(timer);
      watch.stop();
      await loop.catch(() => undefined);
      await nc.drain().catch(() => nc.close());
    },
  };
}
