/**
 * Messages between the broker supervisor (fleet process) and the broker
 * child process, over the fork IPC channel. The supervisor owns the
 * credentials (from the store) and sends them whole at every (re)start and
 * as changes afterwards, so a restarted child has them before it listens.
 */
import type { CredentialKind } from '../store/types.js';

export interface BrokerCredential {
  username: string;
  kind: CredentialKind;
  subject: string;
  /** scrypt hash (fleet/auth/password.ts). */
  hash: string;
}

export interface BrokerLimits {
  maxPayloadBytes: number;
  maxTopicLevels: number;
  connectTimeoutMs: number;
  /** Sustained messages per second per client (token bucket refill), fleet clients exempt. */
  ratePerSecond: number;
  /** Bucket size: a burst allowed above the rate. */
  rateBurst: number;
  /** Unknown serials one source address may have trusted on first use per minute (burst the same). */
  claimNewPerSourcePerMinute: number;
  /** Unknown serials trusted on first use and waiting for ops, at most (above: refused before any hashing). */
  claimPendingMax: number;
  /** Failed password checks one source address may cost per minute; above, its logins are refused before scrypt. */
  authFailuresPerSourcePerMinute: number;
}

export interface BrokerListenOptions {
  host: string;
  /** Plaintext MQTT/TCP for clients; null: none (TLS only), the fleet then uses a loopback internal listener. */
  port: number | null;
  /** The internal listener's port (restarts reuse the first one picked). */
  internalPort?: number | null;
  tlsPort: number | null;
  wsPort: number | null;
  tlsCertFile: string | null;
  tlsKeyFile: string | null;
}

export interface BrokerStartMessage {
  t: 'start';
  listen: BrokerListenOptions;
  limits: BrokerLimits;
  /** Accept an unknown serial's claim secret on first use (recorded as a pending claim). */
  claimTrustOnFirstUse: boolean;
  credentials: BrokerCredential[];
  /** Claim usernames never to trust on first use again (rejected or decommissioned boxes). */
  blocked: string[];
  /** Claim usernames of claims waiting for ops (counted against claimPendingMax). */
  pendingClaims: string[];
}

export type ToChild =
  | BrokerStartMessage
  | { t: 'cred'; credential: BrokerCredential }
  | { t: 'revoke'; username: string; reason: string; block: boolean }
  | { t: 'claim-settled'; username: string }
  | { t: 'stats' }
  | { t: 'stop' };

export interface BrokerStats {
  clients: number;
  authFailed: number;
  publishDenied: number;
  subscribeDenied: number;
  tooLarge: number;
  rateLimited: number;
  /** Unknown serials refused before hashing (rate per source, cap, secret length). */
  claimRefused: number;
  messagesIn: number;
  /** Messages waiting in aedes's router (mqemitter) for a routing slot. */
  routerQueued?: number;
  /** Messages the recursion guard routed from a fresh stack (fleet/broker/mq-guard.ts). */
  routerDeferred?: number;
}

/** What the broker refused: a login, a claim of an unknown serial, a publish, a subscribe, a size, a rate. */
export type RefusalKind = 'auth' | 'claim' | 'publish' | 'subscribe' | 'size' | 'rate';

export type FromChild =
  | {
      t: 'ready';
      ports: { tcp: number | null; tls: number | null; ws: number | null; internal: number | null };
      pid: number;
    }
  | {
      t: 'listen-error';
      listener: 'tcp' | 'tls' | 'ws' | 'internal';
      host: string;
      port: number;
      code: string;
      message: string;
    }
  | { t: 'claim-seen'; serial: string; hash: string }
  | { t: 'stats'; stats: BrokerStats }
  | { t: 'refused'; kind: RefusalKind; who: string; source: string; reason: string; suppressed: number }
  | { t: 'revoked'; username: string; closed: number };
