/**
 * The embedded broker, run in its own process by the supervisor
 * (fleet/broker/supervisor.ts): aedes with per-identity authentication and
 * the contract's ACL. If it dies (aedes can overflow its stack under some
 * floods) the supervisor starts a new one; the fleet logic, a client like
 * any other, reconnects.
 *
 * Rules:
 * - username -> identity by the contract (identityOfUsername); the password
 *   is checked against the scrypt hash the supervisor sent; a good check is
 *   remembered (by fingerprint) until the credential changes, so a
 *   reconnect storm costs no scrypt work;
 * - every client id is bound to the login's username (preConnect rewrites
 *   it, boundClientId): a box and a claim use their username, others keep
 *   their id under "<username>/", so no one can take over another's
 *   session, the fleet's included;
 * - publish/subscribe by mayPublish/maySubscribe; $SYS closed to all but
 *   nothing (the fleet identity is refused $ topics by the contract);
 * - payload size (the fleet's own messages exempt), topic depth, message
 *   rate per identity (all its connections together), connect timeout.
 */
import { readFileSync } from 'node:fs';
import { createServer as createHttpServer } from 'node:http';
import { type AddressInfo, createServer, type Server } from 'node:net';
import type { Duplex } from 'node:stream';
import { createServer as createTlsServer } from 'node:tls';
import { Aedes, type Client } from 'aedes';
import { createWebSocketStream, WebSocketServer } from 'ws';
import {
  FLEET_SUBSCRIPTIONS,
  type Identity,
  identityOfUsername,
  mayPublish,
  mayRetain,
  maySubscribe,
  parseTopic,
} from '../../shared/contract/topics.js';
import { fingerprint, hashSecret, verifySecret } from '../auth/password.js';
import { guardMqRecursion, type MqGuardStats } from './mq-guard.js';
import { PacketGuard } from './packet-guard.js';
import type { BrokerCredential, BrokerStartMessage, BrokerStats, FromChild, RefusalKind, ToChild } from './protocol.js';

type Ident = Identity & { username: string };

const creds = new Map<string, BrokerCredential>();
const verified = new Map<string, string>();
const blocked = new Set<string>();
const identities = new WeakMap<Client, Ident>();
const byUsername = new Map<string, Set<Client>>();
/** Message-rate buckets per identity (username), shared by all its connections: reconnecting does not refill. */
const buckets = new Map<string, { tokens: number; at: number }>();
const stats: BrokerStats = {
  clients: 0,
  authFailed: 0,
  publishDenied: 0,
  subscribeDenied: 0,
  tooLarge: 0,
  rateLimited: 0,
  claimRefused: 0,
  messagesIn: 0,
};

/**
 * Every refusal is counted in `stats` (pushed to the supervisor within a
 * second, for the fleet's metrics) and reported for a warn log line with the
 * identity, source and reason, at most one per kind and identity every
 * REFUSAL_REPORT_MS and REFUSAL_REPORTS_PER_S in all: a flood of refusals
 * costs neither the broker nor the log; the suppressed ones are counted in
 * the next line.
 */
const REFUSAL_REPORT_MS = 10_000;
const REFUSAL_REPORTS_PER_S = 20;
const reported = new Map<string, { at: number; suppressed: number }>();
let reportWindow = { at: 0, n: 0, suppressed: 0 };

function refused(kind: RefusalKind, who: string, reason: string, source: string): void {
  statsChanged = true;
  const now = Date.now();
  const key = `${kind}\u0000${who}`;
  const last = reported.get(key);
  if (last && now - last.at < REFUSAL_REPORT_MS) {
    last.suppressed++;
    return;
  }
  if (now - reportWindow.at >= 1000) reportWindow = { at: now, n: 0, suppressed: reportWindow.suppressed };
  if (reportWindow.n >= REFUSAL_REPORTS_PER_S) {
    reportWindow.suppressed++;
    return;
  }
  reportWindow.n++;
  const suppressed = (last?.suppressed ?? 0) + reportWindow.suppressed;
  reportWindow.suppressed = 0;
  if (reported.size >= 10_000) reported.clear();
  reported.set(key, { at: now, suppressed: 0 });
  send({ t: 'refused', kind, who, source, reason, suppressed });
}

function sourceOf(client: Client | null | undefined): string {
  return (client as unknown as { conn?: { remoteAddress?: string } } | null)?.conn?.remoteAddress ?? 'unknown';
}

let statsChanged = false;
setInterval(() => {
  if (!statsChanged) return;
  statsChanged = false;
  send({ t: 'stats', stats: { ...stats, clients: broker?.connectedClients ?? 0 } });
}, 1000).unref();
let broker: Aedes | undefined;
let routing: MqGuardStats | undefined;
/**
 * Boxes, claims and ops are let in only once the fleet logic has subscribed
 * to events on this broker: after a broker restart nothing a box sends can
 * be acknowledged with nobody there to store it. Until then their CONNACK
 * is held back (up to 8 s, then "server unavailable", CONNACK 3). The fleet's persistent session
 * then keeps its messages while it is away.
 */
let fleetReady = false;
const readyWaiters = new Set<() => void>();
/** How long a CONNACK is held back waiting for the fleet before "server unavailable". */
const FLEET_WAIT_MS = 8000;

function waitFleetReady(ms: number): Promise<boolean> {
  if (fleetReady) return Promise.resolve(true);
  return new Promise((resolve) => {
    const done = () => {
      clearTimeout(timer);
      readyWaiters.delete(done);
      resolve(fleetReady);
    };
    const timer = setTimeout(done, ms);
    readyWaiters.add(done);
  });
}
const servers: { close: (cb: () => void) => void }[] = [];

/** aedes's message router (its mqemitter; public in aedes's JavaScript, absent from its types). */
function routerOf(a: Aedes): unknown {
  return (a as unknown as { mq: unknown }).mq;
}

function send(msg: FromChild): void {
  process.send?.(msg);
}

function authError(code: 3 | 4 | 5, message: string): Error & { returnCode: number } {
  return Object.assign(new Error(message), { returnCode: code });
}

function matchesCredential(identity: Identity, cred: BrokerCredential): boolean {
  switch (identity.kind) {
    case 'device':
      return cred.kind === 'device' && cred.subject === identity.deviceId;
    case 'claim':
      return cred.kind === 'claim' && cred.subject === identity.serial;
    case 'ops':
      return cred.kind === 'ops' && cred.subject === identity.user;
    case 'fleet':
      return cred.kind === 'fleet';
  }
}

/** Connections on the internal listener (TLS-only mode): only the fleet identity may log in there. */
const internalConns = new WeakSet<object>();

/** Claim usernames trusted on first use and waiting for ops (capped by limits.claimPendingMax). */
const pendingClaims = new Set<string>();
/** Per source address: unknown serials it may still have trusted on first use (refilled per minute). */
const claimSources = new Map<string, { tokens: number; at: number }>();

/**
 * The cheap checks before an unknown serial's secret is hashed (scrypt is
 * the expensive part of a login): the secret's length, the number of claims
 * already waiting for ops, and how many new serials this source address
 * brought lately. Each refusal is a CONNACK 5 (not authorized) costing
 * microseconds, so a flood of made-up serials neither fills the store nor
 * slows the real boxes' logins.
 */
function refuseNewClaim(secret: string, source: string, limits: BrokerStartMessage['limits']): string | undefined {
  if (secret.length < 8 || secret.length > 128) return 'claim secret must be 8 to 128 characters';
  if (pendingClaims.size >= limits.claimPendingMax) {
    return `${pendingClaims.size} unknown serials already wait for ops (mqtt.claimPendingMax)`;
  }
  if (!takeToken(claimSources, source, limits.claimNewPerSourcePerMinute, true)) {
    return `too many new serials from ${source} (mqtt.claimNewPerSourcePerMinute)`;
  }
  return undefined;
}

/** Per source address: failed password checks it may still cost (refilled per minute). */
const authFailures = new Map<string, { tokens: number; at: number }>();

/** A per-minute token bucket per source: whether one is left; `take` spends it. */
function takeToken(
  buckets: Map<string, { tokens: number; at: number }>,
  source: string,
  perMinute: number,
  take: boolean,
): boolean {
  const now = Date.now();
  const b = buckets.get(source) ?? { tokens: perMinute, at: now };
  b.tokens = Math.min(perMinute, b.tokens + ((now - b.at) / 60_000) * perMinute);
  b.at = now;
  if (buckets.size >= 10_000 && !buckets.has(source)) buckets.clear();
  buckets.set(source, b);
  if (b.tokens < 1) return false;
  if (take) b.tokens -= 1;
  return true;
}

async function authenticate(
  username: string | undefined,
  password: Buffer | undefined,
  tofu: boolean,
  source = 'unknown',
  limits?: BrokerStartMessage['limits'],
): Promise<Ident> {
  if (!username || !password) throw authError(4, 'username and password required');
  const identity = identityOfUsername(username);
  if (!identity) throw authError(4, `unknown username form ${username}`);
  if (identity.kind !== 'fleet' && !fleetReady && !(await waitFleetReady(FLEET_WAIT_MS))) {
    throw authError(3, 'fleet not ready; retry');
  }
  const secret = password.toString('utf8');
  const cred = creds.get(username);
  if (!cred) {
    if (identity.kind === 'claim' && tofu && !blocked.has(username)) {
      // Trust on first use: the first secret presented for an unknown serial
      // becomes its claim secret; the claim waits for ops approval.
      const refused = limits ? refuseNewClaim(secret, source, limits) : undefined;
      if (refused) throw Object.assign(authError(5, refused), { claim: true });
      // Counted before hashing, so logins racing each other cannot pass the cap together.
      pendingClaims.add(username);
      const hash = await hashSecret(secret);
      if (!creds.has(username)) {
        creds.set(username, { username, kind: 'claim', subject: identity.serial, hash });
        verified.set(username, fingerprint(secret));
        send({ t: 'claim-seen', serial: identity.serial, hash });
        return { ...identity, username };
      }
      return authenticate(username, password, false);
    }
    throw authError(4, blocked.has(username) ? 'claim credential revoked' : 'no such credential');
  }
  if (!matchesCredential(identity, cred)) throw authError(4, 'credential of another kind');
  const fp = fingerprint(`${cred.hash}\u0000${secret}`);
  if (verified.get(username) === fp) return { ...identity, username };
  // A source that keeps failing is refused before the scrypt work (known-good logins above are not).
  if (limits && !takeToken(authFailures, source, limits.authFailuresPerSourcePerMinute, false)) {
    throw authError(5, `too many failed logins from ${source} (mqtt.authFailuresPerSourcePerMinute)`);
  }
  if (!(await verifySecret(secret, cred.hash))) {
    if (limits) takeToken(authFailures, source, limits.authFailuresPerSourcePerMinute, true);
    throw authError(4, 'wrong password');
  }
  if (creds.get(username) !== cred) throw authError(4, 'credential changed while checking');
  verified.set(username, fp);
  return { ...identity, username };
}

/**
 * The client id a login gets, bound to its username so that no identity
 * can take over (or inherit the queued messages of) another's session: a
 * box and a claim use exactly their username (one session each); an ops
 * user or a fleet client keeps its own id inside its username's space
 * ("ops:ann/cli-1"), so ids of different identities never meet and the
 * fleet's own ids ("fleet:core/…") are out of everyone else's reach.
 */
function boundClientId(username: string, requested: string): string {
  const identity = identityOfUsername(username);
  if (!identity || identity.kind === 'device' || identity.kind === 'claim') return username;
  if (requested === username || requested.startsWith(`${username}/`)) return requested.slice(0, MAX_CLIENT_ID);
  const own = requested || Math.random().toString(16).slice(2, 14);
  return `${username}/${own}`.slice(0, MAX_CLIENT_ID);
}

/** The largest CONNECT accepted (username, password, will): far above a box's, far below harm. */
const MAX_CONNECT_BYTES = 16_384;
/** Room for a PUBLISH's topic and packet id on top of the payload limit. */
const PACKET_OVERHEAD = 65_540;
/** MQTT's own bound on a packet's remaining length (the fleet's own connection). */
const MQTT_MAX_PACKET = 268_435_455;

/** aedes's maxClientsIdLength below: a username (up to 70) and the client's own part. */
const MAX_CLIENT_ID = 128;

function allowRate(username: string, limits: BrokerStartMessage['limits']): boolean {
  const now = Date.now();
  const b = buckets.get(username) ?? { tokens: limits.rateBurst, at: now };
  b.tokens = Math.min(limits.rateBurst, b.tokens + ((now - b.at) / 1000) * limits.ratePerSecond);
  b.at = now;
  if (!buckets.has(username)) {
    // A full bucket is the same as none: forget those, so the map holds only identities sending lately.
    if (buckets.size >= 10_000) pruneBuckets(now, limits);
    buckets.set(username, b);
  }
  if (b.tokens < 1) return false;
  b.tokens -= 1;
  return true;
}

function pruneBuckets(now: number, limits: BrokerStartMessage['limits']): void {
  for (const [u, b] of buckets) {
    if (b.tokens + ((now - b.at) / 1000) * limits.ratePerSecond >= limits.rateBurst) buckets.delete(u);
  }
}

function closeClientsOf(username: string): number {
  const set = byUsername.get(username);
  if (!set) return 0;
  const n = set.size;
  for (const c of set) c.close();
  byUsername.delete(username);
  return n;
}

async function start(msg: BrokerStartMessage): Promise<void> {
  for (const c of msg.credentials) creds.set(c.username, c);
  for (const u of msg.blocked) blocked.add(u);
  for (const u of msg.pendingClaims) pendingClaims.add(u);
  const { limits } = msg;
  const aedes = await Aedes.createBroker({
    connectTimeout: limits.connectTimeoutMs,
    maxTopicLevels: limits.maxTopicLevels,
    // device ids are up to 64 characters and are used as client ids (aedes's default allows 23)
    maxClientsIdLength: MAX_CLIENT_ID,
    heartbeatInterval: 60_000,
  });
  broker = aedes;
  // Under overload the router's queue drained by recursion and overflowed the stack (see mq-guard.ts).
  routing = guardMqRecursion(routerOf(aedes));

  aedes.preConnect = (_client, packet, done) => {
    // Before authentication: the id is bound to the username, which is then authenticated.
    if (packet.username) packet.clientId = boundClientId(packet.username, packet.clientId);
    done(null, true);
  };

  aedes.authenticate = (client, username, password, done) => {
    const source = (client as unknown as { conn?: { remoteAddress?: string } }).conn?.remoteAddress ?? 'unknown';
    // The internal listener (TLS-only mode) takes the fleet's login alone, refused before any other check.
    const internal = internalConns.has((client as unknown as { conn: object }).conn);
    const onInternal = internal && identityOfUsername(username ?? '')?.kind !== 'fleet';
    (onInternal
      ? Promise.reject(authError(5, 'the internal listener takes the fleet only'))
      : authenticate(username ?? undefined, password ?? undefined, msg.claimTrustOnFirstUse, source, limits)
    ).then(
      (ident) => {
        identities.set(client, ident);
        const conn = (client as unknown as { conn?: unknown }).conn;
        // The fleet's answers and acks may be larger than what a box may send.
        if (ident.kind === 'fleet' && conn instanceof PacketGuard) conn.allow(MQTT_MAX_PACKET);
        let set = byUsername.get(ident.username);
        if (!set) {
          set = new Set();
          byUsername.set(ident.username, set);
        }
        set.add(client);
        done(null, true);
      },
      (err: Error & { returnCode?: number; claim?: boolean }) => {
        stats.authFailed++;
        if (err.claim) stats.claimRefused++;
        if (err.returnCode !== 3) refused(err.claim ? 'claim' : 'auth', username ?? '-', err.message, source);
        done(authError((err.returnCode as 3 | 4 | 5) ?? 4, err.message) as never, false);
      },
    );
  };

  aedes.authorizePublish = (client, packet, done) => {
    if (!client) {
      // A will published after its client is gone: only a status topic.
      return done(parseTopic(packet.topic)?.key === 'status' ? null : new Error('not allowed'));
    }
    const ident = identities.get(client);
    stats.messagesIn++;
    if (!ident || packet.topic.startsWith('$')) {
      stats.publishDenied++;
      refused('publish', ident?.username ?? '-', `publish to ${packet.topic}`, sourceOf(client));
      return done(new Error(`publish to ${packet.topic} not allowed`));
    }
    const size = packet.payload ? Buffer.byteLength(packet.payload as Buffer) : 0;
    // The limit guards the fleet against its clients, not against itself: a refused QoS 1 publish of the
    // fleet's own (a long answer) would be resent by mqtt.js at every reconnect and cut the fleet off.
    if (ident.kind !== 'fleet' && size > limits.maxPayloadBytes) {
      stats.tooLarge++;
      refused('size', ident.username, `payload of ${size} bytes over ${limits.maxPayloadBytes}`, sourceOf(client));
      return done(new Error(`payload of ${size} bytes exceeds ${limits.maxPayloadBytes}`));
    }
    if (ident.kind !== 'fleet' && !allowRate(ident.username, limits)) {
      stats.rateLimited++;
      refused('rate', ident.username, `over ${limits.ratePerSecond}/s (burst ${limits.rateBurst})`, sourceOf(client));
      return done(new Error('message rate exceeded'));
    }
    if (packet.retain && ident.kind !== 'fleet' && !mayRetain(packet.topic)) {
      stats.publishDenied++;
      refused('publish', ident.username, `retained publish to ${packet.topic}`, sourceOf(client));
      return done(new Error(`${packet.topic} does not take retained messages`));
    }
    if (!mayPublish(ident, packet.topic)) {
      stats.publishDenied++;
      refused('publish', ident.username, `publish to ${packet.topic}`, sourceOf(client));
      return done(new Error(`publish to ${packet.topic} not allowed for ${ident.username}`));
    }
    done(null);
  };

  aedes.authorizeSubscribe = (client, sub, done) => {
    const ident = identities.get(client);
    if (!ident || !maySubscribe(ident, sub.topic)) {
      stats.subscribeDenied++;
      refused('subscribe', ident?.username ?? '-', `subscribe to ${sub.topic}`, sourceOf(client));
      return done(null, null);
    }
    done(null, sub);
  };

  aedes.on('subscribe', (subs, client) => {
    if (identities.get(client)?.kind === 'fleet' && subs.some((x) => x.topic === FLEET_SUBSCRIPTIONS.events)) {
      fleetReady = true;
      for (const w of [...readyWaiters]) w();
    }
  });
  aedes.on('clientReady', () => {
    stats.clients = aedes.connectedClients;
  });
  aedes.on('clientDisconnect', (client) => {
    stats.clients = aedes.connectedClients;
    const ident = identities.get(client);
    if (ident) byUsername.get(ident.username)?.delete(client);
  });

  const ports: { tcp: number | null; tls: number | null; ws: number | null; internal: number | null } = {
    tcp: null,
    tls: null,
    ws: null,
    internal: null,
  };
  const listen = (server: Server, listener: 'tcp' | 'tls' | 'ws' | 'internal', port: number, host = msg.listen.host) =>
    new Promise<number>((resolve, reject) => {
      server.once('error', (err: NodeJS.ErrnoException) => {
        send({
          t: 'listen-error',
          listener,
          host,
          port,
          code: err.code ?? 'UNKNOWN',
          message: err.message,
        });
        reject(err);
      });
      server.listen(port, host, () => resolve((server.address() as AddressInfo).port));
      servers.push(server);
    });

  // Packet-size caps on the raw bytes, before aedes parses (and so before authentication): see packet-guard.ts.
  const guard = (conn: Duplex & { remoteAddress?: string }) =>
    new PacketGuard(conn, {
      firstPacketMax: MAX_CONNECT_BYTES,
      packetMax: limits.maxPayloadBytes + PACKET_OVERHEAD,
      onRefuse: (reason) => {
        stats.tooLarge++;
        refused('size', '-', reason, conn.remoteAddress ?? 'unknown');
      },
    });
  if (msg.listen.port !== null) {
    const tcp = createServer((socket) => {
      socket.setNoDelay(true);
      aedes.handle(guard(socket));
    });
    ports.tcp = await listen(tcp, 'tcp', msg.listen.port);
  } else {
    // TLS only: the fleet's own client still needs a way in, on loopback, for its login alone.
    const internal = createServer((socket) => {
      socket.setNoDelay(true);
      const g = guard(socket);
      internalConns.add(g);
      aedes.handle(g);
    });
    ports.internal = await listen(internal, 'internal', msg.listen.internalPort ?? 0, '127.0.0.1');
  }
  if (msg.listen.tlsPort !== null && msg.listen.tlsCertFile && msg.listen.tlsKeyFile) {
    const tls = createTlsServer(
      { cert: readFileSync(msg.listen.tlsCertFile), key: readFileSync(msg.listen.tlsKeyFile) },
      (socket) => {
        socket.setNoDelay(true);
        aedes.handle(guard(socket));
      },
    );
    ports.tls = await listen(tls as unknown as Server, 'tls', msg.listen.tlsPort);
  }
  if (msg.listen.wsPort !== null) {
    const http = createHttpServer();
    const wss = new WebSocketServer({ server: http, maxPayload: limits.maxPayloadBytes + PACKET_OVERHEAD });
    wss.on('connection', (ws, req) => {
      const stream = Object.assign(createWebSocketStream(ws), { remoteAddress: req.socket.remoteAddress });
      aedes.handle(guard(stream), req);
    });
    ports.ws = await listen(http as unknown as Server, 'ws', msg.listen.wsPort);
  }
  send({ t: 'ready', ports, pid: process.pid });
}

process.on('message', (raw: ToChild) => {
  switch (raw.t) {
    case 'start':
      start(raw).catch(() => process.exit(3));
      break;
    case 'cred': {
      const old = creds.get(raw.credential.username);
      creds.set(raw.credential.username, raw.credential);
      verified.delete(raw.credential.username);
      // A replaced secret ends the sessions made with the old one.
      if (old && old.hash !== raw.credential.hash) closeClientsOf(raw.credential.username);
      break;
    }
    case 'revoke': {
      creds.delete(raw.username);
      verified.delete(raw.username);
      pendingClaims.delete(raw.username);
      if (raw.block) blocked.add(raw.username);
      send({ t: 'revoked', username: raw.username, closed: closeClientsOf(raw.username) });
      break;
    }
    case 'claim-settled':
      pendingClaims.delete(raw.username);
      break;
    case 'stats':
      send({
        t: 'stats',
        stats: {
          ...stats,
          clients: broker?.connectedClients ?? 0,
          routerQueued: broker ? (routerOf(broker) as { length?: number }).length : 0,
          routerDeferred: routing?.deferred ?? 0,
        },
      });
      break;
    case 'stop':
      for (const s of servers) s.close(() => undefined);
      broker?.close(() => process.exit(0));
      setTimeout(() => process.exit(0), 2000).unref();
      break;
  }
});

// The parent went away: nothing to serve.
process.on('disconnect', () => process.exit(0));
