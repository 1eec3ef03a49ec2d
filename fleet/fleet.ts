/**
 * The fleet's composition root. Fleet.start(config) opens the store, starts
 * the broker (embedded and supervised, or connects to an external one),
 * connects the fleet logic as an MQTT client (fleet:core) and wires:
 *
 *   events     -> Ingest   -> store, bus 'event.stored' / 'sequence.gap';
 *                 after the commit: PUBACK to the broker, Receipt to the box
 *   status, telemetry, any box traffic -> Presence -> bus 'presence.changed'
 *   telemetry  -> bus 'telemetry' (+ firmware in the registry)
 *   config/reported -> registry + bus 'config.reported'
 *   _claim/+/req -> Registry.handleClaim -> _claim/<serial>/res
 *   _ops/+/req   -> OpsApi (OPS_METHODS)
 *   <id>/fleet/req -> FLEET_REQUESTS ('config.get')
 *   commands to boxes: fleet.commands.send(deviceId, method, params)
 *
 * Features such as the alert engine are given the Fleet and use only
 * fleet.bus, fleet.commands, fleet.store and fleet.registry; they register
 * bus listeners with themselves as owner and remove them on stop.
 */
import { readFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import mqtt, { type MqttClient } from 'mqtt';
import { background } from '../shared/background.js';
import { ReceiptSchema } from '../shared/contract/delivery.js';
import {
  ClaimRequestSchema,
  ConfigReportedSchema,
  StatusSchema,
  TelemetrySchema,
} from '../shared/contract/messages.js';
import { FLEET_REQUESTS } from '../shared/contract/rpc.js';
import { claimTopics, deviceTopics, FLEET_SUBSCRIPTIONS, parseTopic } from '../shared/contract/topics.js';
import { CallboxError, describeError, ErrorCode } from '../shared/errors.js';
import { getLogger } from '../shared/log.js';
import { type Handlers, RpcResponder } from '../shared/rpc.js';
import { decodePayload } from '../shared/validate.js';
import { hashSecret, MACHINE_SCRYPT, newSecret } from './auth/password.js';
import { assertBrokerPortsFree } from './broker/port-check.js';
import { BROKER_SYS_TOPICS, type BrokerQueueState, BrokerQueueWatch } from './broker/queue-watch.js';
import { BrokerSupervisor } from './broker/supervisor.js';
import { FleetBus } from './bus.js';
import { NatsAuthSink } from './cluster/auth-sink.js';
import { clusterAddresses, mqttServers } from './cluster/mode.js';
import { RequestQueue } from './cluster/request-queue.js';
import { DeviceCommands } from './commands.js';
import type { FleetConfig } from './config.js';
import { PatientCipher } from './crypto/patient-data.js';
import { Ingest } from './ingest.js';
import { JetStreamIngest } from './ingest-jetstream.js';
import { DynsecSink } from './mosquitto.js';
import { OpsApi } from './ops-api.js';
import { Presence } from './presence.js';
import { type CredentialSink, Registry } from './registry.js';
import { openStore } from './store/index.js';
import type { Store } from './store/types.js';

const log = getLogger('fleet');

/**
 * A feature plugged into the fleet (the alert engine, the HTTP API): made
 * from the running Fleet, started once the fleet is connected to its
 * broker, stopped (in reverse order) before the fleet stops.
 */
export interface FleetFeature {
  readonly name: string;
  start(): Promise<void> | void;
  /** Called once every feature has started (the web server registers the others' routes, then listens). */
  ready?(): Promise<void> | void;
  stop(): Promise<void> | void;
}

/** A fastify plugin a feature serves on the fleet's HTTP server (fleet/web), with its options. */
export interface HttpPlugin {
  // biome-ignore lint/suspicious/noExplicitAny: fastify plugins differ in their options' type
  plugin: import('fastify').FastifyPluginAsync<any>;
  options: object;
}

/** Where the patient-data keys are (store.keyFile, or beside the SQLite file). */
export function patientKeyFile(store: FleetConfig['store']): string {
  if (store.keyFile) return store.keyFile;
  return store.kind === 'sqlite' && store.sqlitePath !== ':memory:'
    ? join(dirname(store.sqlitePath), 'keys', 'fleet-data.key')
    : 'var/keys/fleet-data.key';
}

/**
 * The broker client id of a fleet process: fleet-<login name> for one fleet
 * (fleet:core -> fleet-core), fleet-<login name>-<instance.id> for one of
 * several workers, so that workers never take over each other's session.
 */
export function fleetClientId(username: string, instance: string | null): string {
  const base = `fleet-${username.replace(/^fleet:/, '')}`;
  return instance ? `${base}-${instance}` : base;
}

export interface FleetOptions {
  /** Features to start with the fleet, in order. */
  features?: ((fleet: Fleet) => FleetFeature)[];
  /** Use this store instead of opening the configured one (tests); it is not closed by stop(). */
  store?: Store;
  /** Called with the first admin's password when the store had no ops user (default: written to a file). */
  onBootstrapAdmin?: (user: string, password: string) => void;
}

export interface FleetMetrics {
  ingest: Ingest['counters'];
  rejectedMessages: number;
  online: number;
  brokerRestarts: number;
  reconnects: number;
  /** Embedded broker counters (refused logins, claims, publishes, subscribes, sizes, rates). */
  broker: import('./broker/protocol.js').BrokerStats | null;
  /** External mode: the broker's queue as its $SYS figures say. */
  brokerQueue?: BrokerQueueState;
  /** ingest.source jetstream: messages pulled, acknowledged after the commit, terminated (never storable). */
  jetstream?: JetStreamIngest['counters'];
}

export class Fleet {
  readonly bus = new FleetBus();
  readonly commands: DeviceCommands;
  readonly ingest: Ingest;
  readonly presence: Presence;
  readonly registry: Registry;
  broker: BrokerSupervisor | undefined;
  client: MqttClient | undefined;
  /** URL the fleet's own client uses (embedded: loopback to the broker's TCP port). */
  brokerUrl = '';
  private ops: OpsApi | undefined;
  private fleetRequests: RpcResponder<typeof FLEET_REQUESTS> | undefined;
  /** Features' answers to box requests (the update feature's 'update.chunk'), added before start. */
  readonly moreFleetRequests: {
    -readonly [M in keyof Handlers<typeof FLEET_REQUESTS>]: Handlers<typeof FLEET_REQUESTS>[M];
  } = {};
  /** Plugins features serve on the fleet's HTTP server (fleet/web registers them when every feature has started). */
  readonly httpPlugins: HttpPlugin[] = [];
  private rejected = 0;
  private readonly features: FleetFeature[] = [];
  private reconnects = 0;
  private ownsStore: boolean;
  /** External mode: Mosquitto's dynamic security, kept in step with the registry. */
  private dynsec: DynsecSink | undefined;
  /** ingest.source 'jetstream': the durable consumer this worker pulls box events from. */
  private jetstream: JetStreamIngest | undefined;
  /** ingest.source 'jetstream' (cluster mode): claims, ops and box requests from the engine's queue group. */
  private requestQueue: RequestQueue | undefined;
  /** Cluster mode: the engine's users, kept in step with the registry (fleet/cluster). */
  private natsAuth: NatsAuthSink | undefined;
  /** Cluster mode: the MQTT listeners of the engine's nodes. */
  private clusterMqttUrls: string[] = [];
  /** External mode: the broker's queue fill and drops. */
  queueWatch: BrokerQueueWatch | undefined;

  private constructor(
    readonly config: FleetConfig,
    readonly store: Store,
    ownsStore: boolean,
    /** Seals patient data at rest (events' numbers and texts, voicemail): fleet/crypto/patient-data.ts. */
    readonly patient: PatientCipher,
  ) {
    this.ownsStore = ownsStore;
    this.commands = new DeviceCommands(config.ops.commandTimeoutMs);
    this.ingest = new Ingest(store, this.bus, { ...config.ingest, liveGapCheck: config.ingest.source === 'mqtt' });
    this.presence = new Presence(this.bus, store, {
      offlineAfterMs: config.presence.offlineAfterS * 1000,
      flushMs: config.presence.flushS * 1000,
    });
    if (config.mqtt.mode === 'external') this.dynsec = new DynsecSink(() => this.client);
    const natsSink = (): NatsAuthSink => {
      if (!this.natsAuth) throw new CallboxError(ErrorCode.LinkDisconnected, 'not connected to the engine yet');
      return this.natsAuth;
    };
    const clusterSink: CredentialSink = {
      put: (cred, secret) => natsSink().put(cred, secret),
      revoke: (username) => natsSink().revoke(username),
    };
    const sink: CredentialSink = this.dynsec ??
      (config.mqtt.mode === 'cluster' ? clusterSink : undefined) ?? {
        put: (cred) => this.broker?.putCredential({ ...cred }),
        revoke: (username, reason, block) => this.broker?.revoke(username, reason, block),
        claimSettled: (serial) => this.broker?.claimSettled(serial),
      };
    this.registry = new Registry({
      store,
      bus: this.bus,
      sink,
      mqtt: () => this.client,
      caPem: config.mqtt.tlsCaFile ? readFileSync(config.mqtt.tlsCaFile, 'utf8') : null,
      publicUrl: config.mqtt.publicUrl,
    });
  }

  static async start(config: FleetConfig, opts: FleetOptions = {}): Promise<Fleet> {
    await assertBrokerPortsFree(config.mqtt); // before anything is opened or created
    const patient = PatientCipher.open(patientKeyFile(config.store));
    const store = opts.store ?? (await openStore(config.store));
    store.usePatientCipher(patient);
    const fleet = new Fleet(config, store, !opts.store, patient);
    try {
      await fleet.run(opts);
    } catch (e) {
      await fleet.stop().catch(() => undefined);
      throw e;
    }
    return fleet;
  }

  private async run(opts: FleetOptions): Promise<void> {
    const m = this.config.mqtt;
    let username: string;
    let password: string;
    if (m.mode === 'embedded') {
      username = 'fleet:core';
      password = newSecret();
      const creds = (await this.store.listActiveCredentials()).map((c) => ({
        username: c.username,
        kind: c.kind,
        subject: c.subject,
        hash: c.hash,
      }));
      creds.push({ username, kind: 'fleet', subject: 'core', hash: await hashSecret(password, MACHINE_SCRYPT) });
      this.broker = new BrokerSupervisor({
        listen: {
          host: m.host,
          port: m.port,
          tlsPort: m.tlsPort,
          wsPort: m.wsPort,
          tlsCertFile: m.tlsCertFile,
          tlsKeyFile: m.tlsKeyFile,
        },
        limits: {
          maxPayloadBytes: m.maxPayloadBytes,
          maxTopicLevels: m.maxTopicLevels,
          connectTimeoutMs: m.connectTimeoutMs,
          ratePerSecond: m.ratePerSecond,
          rateBurst: m.rateBurst,
          claimNewPerSourcePerMinute: m.claimNewPerSourcePerMinute,
          claimPendingMax: m.claimPendingMax,
          authFailuresPerSourcePerMinute: m.authFailuresPerSourcePerMinute,
        },
        pendingClaims: (await this.store.listBoxes({ claimState: 'pending' })).map((b) => `claim:${b.serial}`),
        claimTrustOnFirstUse: m.claimTrustOnFirstUse,
        credentials: creds,
        blocked: (await this.store.listBoxes())
          .filter((b) => b.claimState === 'decommissioned' || b.claimState === 'rejected')
          .map((b) => `claim:${b.serial}`),
        onClaimSeen: (serial, hash) => {
          this.registry.claimSeen(serial, hash).catch((err) => log.error({ err, serial }, 'recording claim failed'));
        },
      });
      const ports = await this.broker.start();
      this.brokerUrl = `mqtt://127.0.0.1:${ports.tcp ?? ports.internal}`;
    } else {
      username = m.externalUsername;
      if (!m.externalPasswordFile) {
        throw new CallboxError(
          ErrorCode.ConfigInvalid,
          'external broker mode needs mqtt.externalPasswordFile (CALLBOX_FLEET__MQTT__EXTERNAL_PASSWORD_FILE): ' +
            'run `fleet mosquitto-config --out <dir>` and point it at <dir>/fleet.secret',
        );
      }
      try {
        password = readFileSync(m.externalPasswordFile, 'utf8').trim();
      } catch (e) {
        throw new CallboxError(
          ErrorCode.ConfigFileUnreadable,
          `mqtt.externalPasswordFile ${m.externalPasswordFile} cannot be read: ${describeError(e)}`,
        );
      }
      this.brokerUrl = m.externalUrl;
      if (m.mode === 'cluster') {
        const { mqttUrls, natsUrls } = clusterAddresses(m);
        this.clusterMqttUrls = mqttUrls;
        this.brokerUrl = mqttUrls[0] as string;
        this.natsAuth = await NatsAuthSink.open({ servers: natsUrls, user: username, password });
      }
    }
    // Boxes the store last saw online are online until their heartbeat times out.
    this.presence.seed(
      (await this.store.listBoxes({ claimState: 'approved' })).flatMap((b) =>
        b.deviceId && b.online && b.lastSeenAt ? [{ deviceId: b.deviceId, lastSeen: Date.parse(b.lastSeenAt) }] : [],
      ),
    );
    this.bus.on('box.decommissioned', this, ({ box }) => {
      if (box.deviceId) this.presence.forget(box.deviceId);
    });
    await this.connect(username, password);
    await this.expireClaims();
    this.claimExpiry = setInterval(() => void this.expireClaims(), 3_600_000);
    this.claimExpiry.unref();
    // After connecting, so the new admin's credential reaches the broker (either mode).
    await this.bootstrapAdmin(opts);
    this.presence.start();
    for (const make of opts.features ?? []) {
      const feature = make(this);
      await feature.start();
      this.features.push(feature);
      log.info({ feature: feature.name }, 'feature started');
    }
    for (const feature of this.features) await feature.ready?.();
  }

  private claimExpiry: NodeJS.Timeout | undefined;

  /** Forget claims of unknown serials left waiting longer than mqtt.claimPendingExpiryH. */
  async expireClaims(now = Date.now()): Promise<number> {
    const n = await this.registry
      .expireStaleClaims(this.config.mqtt.claimPendingExpiryH * 3_600_000, now)
      .catch((err) => {
        log.error({ err }, 'expiring stale claims failed');
        return 0;
      });
    if (n > 0) log.info({ n }, 'stale pending claims forgotten');
    return n;
  }

  private async bootstrapAdmin(opts: FleetOptions): Promise<void> {
    if ((await this.store.listOpsUsers()).length > 0) return;
    const { bootstrapUser, bootstrapPasswordFile } = this.config.ops;
    const u = await this.registry.createOpsUser('fleet', bootstrapUser, 'admin');
    if (opts.onBootstrapAdmin) {
      opts.onBootstrapAdmin(u.name, u.password);
      return;
    }
    const { mkdirSync, writeFileSync } = await import('node:fs');
    const { dirname } = await import('node:path');
    mkdirSync(dirname(bootstrapPasswordFile), { recursive: true });
    writeFileSync(bootstrapPasswordFile, `${u.password}\n`, { mode: 0o600 });
    log.warn(
      { user: u.username, file: bootstrapPasswordFile },
      'first start: created the ops admin; its password is in the file (the fleet CLI reads it from there)',
    );
  }

  private async connect(username: string, password: string): Promise<void> {
    const client = mqtt.connect(this.brokerUrl, {
      ...mqttServers(this.clusterMqttUrls),
      username,
      password,
      // A persistent session: the broker keeps QoS 1 messages for the fleet while it is away.
      clientId: fleetClientId(username, this.config.instance.id),
      clean: false,
      keepalive: 30,
      reconnectPeriod: this.config.mqtt.reconnectMs,
      connectTimeout: 10_000,
      resubscribe: true,
    });
    this.client = client;
    let first = true;
    client.on('connect', () => {
      if (!first) {
        this.reconnects++;
        log.info('fleet client reconnected to the broker');
        // An embedded broker restart loses retained messages: publish desired configuration again.
        this.registry
          .republishAllDesired()
          .then((n) => log.info({ n }, 'desired configuration republished'))
          .catch((err) => log.error({ err }, 'republishing desired configuration failed'));
      }
      this.bus.emit('broker.connected', { reconnect: !first });
      first = false;
    });
    client.on('close', () => this.bus.emit('broker.disconnected', {}));
    client.on('error', (err) => log.warn({ err: err.message }, 'fleet MQTT client error'));
    client.on('message', (topic, payload, packet) => this.dispatch(topic, payload, packet.retain));
    this.ackEventsAfterCommit(client);
    this.ingest.sendReceipt = (deviceId, receipt) => {
      client.publish(deviceTopics(deviceId).receipt, JSON.stringify(receipt), { qos: 1 }, (err) => {
        // Lost receipts cost a resend by the box (duplicates are receipted again), nothing more.
        if (err) log.debug({ deviceId, err: err.message }, 'receipt not sent');
      });
    };
    try {
      await new Promise<void>((resolve, reject) => {
        const fail = (err: Error) => {
          client.off('connect', ok);
          reject(err);
        };
        const ok = () => {
          client.off('error', fail);
          resolve();
        };
        client.once('connect', ok);
        client.once('error', fail);
      });
    } catch (e) {
      client.end(true);
      throw new CallboxError(
        ErrorCode.LinkDisconnected,
        `the fleet cannot log in to the broker at ${this.brokerUrl} as ${username}: ${describeError(e)}`,
      );
    }
    // Events: each worker gets its share (shared subscription or JetStream); presence and reports: every worker.
    const source = this.config.ingest.source;
    await client.subscribeAsync(
      [
        ...(source === 'jetstream' ? [] : [this.shared(FLEET_SUBSCRIPTIONS.events)]),
        FLEET_SUBSCRIPTIONS.status,
        FLEET_SUBSCRIPTIONS.telemetry,
        FLEET_SUBSCRIPTIONS.configReported,
        // Cluster mode: requests come from the engine's queue group instead (below).
        ...(source === 'jetstream' ? [] : [this.shared(FLEET_SUBSCRIPTIONS.claimReq)]),
        // Workers sharing a box's batches hear each other's receipts (Ingest.noteReceipt).
        ...(source === 'mqtt' ? [] : [FLEET_SUBSCRIPTIONS.receipts]),
      ],
      { qos: 1 },
    );
    if (source === 'jetstream') {
      this.jetstream = await JetStreamIngest.start(this.ingest, {
        servers: this.natsServers,
        user: username,
        pass: password,
        replicas: this.config.ingest.streamReplicas,
        ackWaitMs: this.config.ingest.ackWaitMs,
        name: fleetClientId(username, this.config.instance.id),
      });
    }
    if (this.dynsec) {
      // A Mosquitto configured by an older fleet lacks topics added to the contract since (receipts).
      const usernames = (await this.store.listActiveCredentials()).map((c) => c.username);
      this.dynsec
        .refreshAcls(usernames)
        .then((n) => log.info({ identities: usernames.length, acls: n }, 'Mosquitto ACLs brought up to the contract'))
        .catch((err) => log.error({ err }, 'refreshing Mosquitto ACLs failed'));
    }
    if (this.natsAuth) {
      // Revoked while the fleet was away: gone from the engine too. Active ones missing there need reissuing.
      const usernames = (await this.store.listActiveCredentials()).map((c) => c.username);
      const { missing } = await this.natsAuth.reconcile(usernames);
      if (missing.length) {
        log.warn(
          { missing: missing.length },
          'active credentials unknown to the engine (issued before cluster mode): reissue them (rotate) to let those boxes in',
        );
      }
    }
    if (this.config.mqtt.mode === 'external') {
      this.queueWatch = new BrokerQueueWatch(this.bus, this.config.mqtt.externalMaxQueuedMessages);
      await client
        .subscribeAsync([BROKER_SYS_TOPICS.stored, BROKER_SYS_TOPICS.dropped], { qos: 0 })
        .catch((err) => log.warn({ err }, "cannot watch the broker's queue ($SYS/broker)"));
    }
    await this.commands.start(client);
    this.ops = new OpsApi(this.store, this.registry, this.commands, this.presence, this.config.ops.commandTimeoutMs);
    const viaQueue = source === 'jetstream';
    await this.ops.start(client, this.shared(FLEET_SUBSCRIPTIONS.opsReq), { subscribe: !viaQueue });
    this.fleetRequests = new RpcResponder(
      client,
      FLEET_REQUESTS,
      {
        'config.get': async (_p, ctx) => {
          const deviceId = parseTopic(ctx.topic)?.deviceId;
          const cfg = deviceId ? await this.store.getDesiredConfig(deviceId) : undefined;
          return cfg ? Registry.desiredMessage(cfg) : null;
        },
        'update.chunk': async (p, ctx) => {
          const h = this.moreFleetRequests['update.chunk'];
          if (!h)
            throw new CallboxError(ErrorCode.NotFound, 'this fleet offers no updates (the updates feature is off)');
          return h(p, ctx);
        },
      },
      { requestFilter: this.shared(FLEET_SUBSCRIPTIONS.fleetReq), log, subscribe: !viaQueue },
    );
    await this.fleetRequests.start();
    if (viaQueue) {
      // nats-server's MQTT gateway has no shared subscriptions: each request goes to one worker of a NATS queue
      // group and is handled as if this client had received it (the answer goes back over MQTT as before).
      this.requestQueue = await RequestQueue.start({
        servers: this.natsServers,
        user: username,
        pass: password,
        name: fleetClientId(username, this.config.instance.id),
        filters: [FLEET_SUBSCRIPTIONS.claimReq, FLEET_SUBSCRIPTIONS.opsReq, FLEET_SUBSCRIPTIONS.fleetReq],
        deliver: (topic, payload) =>
          client.emit('message', topic, payload, { cmd: 'publish', topic, payload, qos: 0, dup: false, retain: false }),
      });
    }
  }

  /**
   * Events are acknowledged to the broker (PUBACK) only once stored. MQTT
   * 3.1.1 clients (aedes speaks nothing newer) get no customHandleAcks in
   * mqtt.js, so this uses its handleMessage hook, which it calls for each
   * incoming PUBLISH before reading the next packet: for an events message
   * it hands the message to ingest, then calls back with a marker error,
   * which makes mqtt.js skip its PUBACK and read on; the PUBACK is written
   * when the batch commits, on the same connection only (after a reconnect
   * the broker sends the message again: a duplicate, receipted, acknowledged).
   * When ingest is full, the callback waits for room: mqtt.js reads nothing
   * more, TCP pushes back, the broker queues (backpressure).
   */
  private ackEventsAfterCommit(client: MqttClient): void {
    const deferred = new Error('PUBACK deferred until the events are stored');
    client.handleMessage = (packet, callback) => {
      if (packet.cmd !== 'publish') return callback();
      const parsed = parseTopic(packet.topic);
      if (parsed?.key !== 'events' || !parsed.deviceId) return callback();
      const stream = client.stream;
      const { messageId } = packet;
      const puback = () => {
        if (client.stream !== stream || !client.connected || messageId === undefined) return;
        // mqtt.js has no public call for a PUBACK (only customHandleAcks, MQTT 5 only).
        (client as unknown as { _sendPacket(p: object): void })._sendPacket({ cmd: 'puback', messageId });
      };
      const payload = typeof packet.payload === 'string' ? Buffer.from(packet.payload) : packet.payload;
      // A rejected message is acknowledged at once: sending it again would not make it valid.
      if (!this.ingest.accept(parsed.deviceId, packet.topic, payload, puback) || packet.qos === 0) return callback();
      if (this.ingest.hasRoom()) return callback(deferred);
      background(
        this.ingest.whenRoom().then(() => callback(deferred)),
        log,
        'reading from the broker again once ingest has room',
      );
    };
  }

  /** The engine's NATS listeners: ingest.natsUrls, else (cluster mode) mqtt.clusterNatsUrls. */
  private get natsServers(): string[] {
    const c = this.config;
    return c.ingest.natsUrls.length > 0 ? c.ingest.natsUrls : c.mqtt.clusterNatsUrls;
  }

  /** Work one worker does (events, requests): a shared subscription when ingest.source is 'shared'. */
  private shared(filter: string): string {
    return this.config.ingest.source === 'shared' ? `$share/fleet/${filter}` : filter;
  }

  private reject(topic: string, deviceId: string | null, e: unknown): void {
    this.rejected++;
    const reason = describeError(e);
    log.warn({ topic, reason }, 'message rejected');
    this.bus.emit('message.rejected', { topic, deviceId, reason });
  }

  private dispatch(topic: string, payload: Buffer, retained: boolean): void {
    if (topic.startsWith('$SYS/')) {
      this.queueWatch?.onSys(topic, payload);
      return;
    }
    const parsed = parseTopic(topic);
    if (!parsed) return;
    const deviceId = parsed.deviceId;
    if (deviceId && !(retained && parsed.key === 'status') && payload.length > 0) this.presence.seen(deviceId);
    try {
      switch (parsed.key) {
        case 'events':
          break; // handled in ackEventsAfterCommit (acknowledged after the commit)
        case 'receipt': {
          if (!deviceId || this.config.ingest.source === 'mqtt') break;
          this.ingest.noteReceipt(deviceId, decodePayload(ReceiptSchema, payload, `receipt for ${deviceId}`));
          break;
        }
        case 'status': {
          if (!deviceId || payload.length === 0) break;
          const status = decodePayload(StatusSchema, payload, `status of ${deviceId}`);
          this.presence.status(deviceId, status, retained);
          this.bus.emit('status', { deviceId, status, retained });
          break;
        }
        case 'telemetry': {
          if (!deviceId) break;
          const telemetry = decodePayload(TelemetrySchema, payload, `telemetry of ${deviceId}`);
          this.bus.emit('telemetry', { deviceId, telemetry });
          this.noteFirmware(deviceId, telemetry.softwareVersion).catch((err) =>
            log.error({ err, deviceId }, 'recording firmware failed'),
          );
          break;
        }
        case 'configReported': {
          if (!deviceId || payload.length === 0) break;
          const report = decodePayload(ConfigReportedSchema, payload, `config report of ${deviceId}`);
          this.noteReport(deviceId, report).catch((err) =>
            log.error({ err, deviceId }, 'recording config report failed'),
          );
          this.bus.emit('config.reported', { deviceId, report });
          break;
        }
        case 'claimReq': {
          const serial = parsed.serial as string;
          const req = decodePayload(ClaimRequestSchema, payload, `claim request of ${serial}`);
          if (req.serial !== serial) throw new Error(`claim names serial ${req.serial} but came on ${serial}'s topic`);
          this.registry.handleClaim(req).then(
            (answer) => this.client?.publish(claimTopics(serial).res, JSON.stringify(answer), { qos: 1 }),
            (err) => log.error({ err, serial }, 'claim handling failed'),
          );
          break;
        }
        default:
          break;
      }
    } catch (e) {
      this.reject(topic, deviceId ?? null, e);
    }
  }

  private readonly firmware = new Map<string, string>();

  private async noteFirmware(deviceId: string, version: string): Promise<void> {
    if (this.firmware.get(deviceId) === version) return;
    this.firmware.set(deviceId, version);
    const box = await this.store.getBoxByDeviceId(deviceId);
    if (box && box.firmware !== version) await this.store.updateBox(box.serial, { firmware: version });
  }

  private async noteReport(deviceId: string, report: import('../shared/contract/messages.js').ConfigReported) {
    const box = await this.store.getBoxByDeviceId(deviceId);
    if (!box) return;
    await this.store
      .updateBox(box.serial, {
        reportedVersion: report.state === 'applied' ? report.version : report.appliedVersion,
        reportedState: report.state,
        reportedReason: report.reason ?? null,
      })
      .catch((err) => log.error({ err, deviceId }, 'recording config report failed'));
  }

  metrics(): FleetMetrics {
    return {
      ingest: { ...this.ingest.counters },
      rejectedMessages: this.rejected + this.ingest.counters.rejected,
      online: this.presence.onlineCount(),
      brokerRestarts: this.broker?.restarts ?? 0,
      reconnects: this.reconnects,
      broker: this.broker?.lastStats ?? null,
      ...(this.queueWatch ? { brokerQueue: { ...this.queueWatch.state } } : {}),
      ...(this.jetstream ? { jetstream: { ...this.jetstream.counters } } : {}),
    };
  }

  /** The ops API (after start): features add their OPS_METHODS handlers with opsApi.extend(). */
  get opsApi(): OpsApi | undefined {
    return this.ops;
  }

  /** A started feature by name (e.g. 'alerts'). */
  feature<T extends FleetFeature>(name: string): T | undefined {
    return this.features.find((f) => f.name === name) as T | undefined;
  }

  async stop(): Promise<void> {
    clearInterval(this.claimExpiry);
    for (const f of this.features.splice(0).reverse()) {
      await Promise.resolve(f.stop()).catch((err) => log.error({ err, feature: f.name }, 'feature stop failed'));
    }
    await this.requestQueue?.stop();
    await this.jetstream?.stop();
    await this.ingest.stop();
    await this.presence.stop();
    this.bus.removeAll(this);
    await this.ops?.stop().catch(() => undefined);
    await this.fleetRequests?.stop().catch(() => undefined);
    this.commands.stop();
    if (this.client) await this.client.endAsync(true).catch(() => undefined);
    await this.broker?.stop();
    await this.natsAuth?.close();
    if (this.ownsStore) await this.store.close();
  }
}
