/**
 * The uplink session supervisor: everything between the box and the fleet's
 * broker, for as long as the box runs.
 *
 *   loop: stored credentials? no -> claim until approved (unprovisioned), save them
 *         -> device session: Link as the device, the outbox wired to it,
 *            commands answered (RpcResponder on the box's handlers, kept
 *            answers from the CommandCache), fleet requests (config.get),
 *            the desired configuration offered to Settings and the report
 *            published (retained) at every change and every connect
 *         -> ends when stopped, or when the broker refuses the credentials
 *         -> refused revokeAfterRefusals times in a row (once, after having been
 *            online, counts as the first): credentials set aside (revoked),
 *            back to claiming; otherwise wait (equal-jitter backoff from
 *            reconnectMinMs to reconnectMaxMs) and try the same credentials again
 *
 * States (onState): unprovisioned (claiming) -> connecting -> online <->
 * offline; revoked. The Box turns them into its 'state' events.
 *
 * abort() ends the claim, the waits and the config retries at once but
 * keeps the device link up (the Box stops its modules first, and their last
 * events still go out); stop() then ends the link (retained "offline") and
 * resolves once the loop has returned.
 */
import { readFile } from 'node:fs/promises';
import type { MqttClient } from 'mqtt';
import { background } from '../../shared/background.js';
import { backoffDelay, sleep } from '../../shared/backoff.js';
import type { ConfigReported } from '../../shared/contract/messages.js';
import { DEVICE_COMMANDS, FLEET_REQUESTS } from '../../shared/contract/rpc.js';
import { type DeviceTopics, deviceTopics } from '../../shared/contract/topics.js';
import { CallboxError, describeError, ErrorCode } from '../../shared/errors.js';
import type { Logger } from '../../shared/log.js';
import { type Handlers, RpcRequester, RpcResponder } from '../../shared/rpc.js';
import type { DeviceConfig } from '../config.js';
import type { CommandCache } from './command-cache.js';
import type { Credentials, CredentialsFile } from './credentials.js';
import { Link } from './link.js';
import type { Outbox } from './outbox.js';
import { claimUntilApproved } from './provisioning.js';
import { retryWithBackoff } from './retry.js';
import type { Settings } from './settings.js';
import { wireOutbox } from './wire.js';

export type UplinkState = 'starting' | 'unprovisioned' | 'connecting' | 'online' | 'offline' | 'revoked' | 'stopped';

export interface UplinkSessionOptions {
  config: Pick<DeviceConfig, 'mqtt' | 'box'>;
  bootId: string;
  softwareVersion: () => string;
  credentials: CredentialsFile;
  outbox: Outbox;
  /** The box's command handlers (already made idempotent by the cache). */
  handlers: Handlers<typeof DEVICE_COMMANDS>;
  commands: CommandCache;
  settings: Settings;
  onState: (state: UplinkState, detail?: string) => void;
  /** A configuration report was produced (applied or refused). */
  onReport: (report: ConfigReported) => void;
  /** Connected, subscribed and configured (telemetry goes out now). */
  onConfigured?: () => Promise<void>;
  /** Random source for the jitter. */
  random?: () => number;
  /** A device-credential refusal must repeat this many times in a row before it counts as revoked (default 3). */
  revokeAfterRefusals?: number;
  log: Logger;
}

type Outcome = 'stopped' | 'refused' | 'connected-then-refused';

export class UplinkSession {
  private readonly abortController = new AbortController();
  private linkRef: Link | undefined;
  private topicsRef: DeviceTopics | undefined;
  private lastReport: ConfigReported | undefined;
  private wake: (() => void) | undefined;
  private done: Promise<void> | undefined;
  private stopped = false;
  private readonly log: Logger;

  constructor(private readonly o: UplinkSessionOptions) {
    this.log = o.log;
  }

  /** Ends claims, waits and retries when aborted (tests count its listeners). */
  get signal(): AbortSignal {
    return this.abortController.signal;
  }

  /** The device link while one runs. */
  get link(): Link | undefined {
    return this.linkRef;
  }

  /** The device's topics once credentials are known (kept after the link ends). */
  get topics(): DeviceTopics | undefined {
    return this.topicsRef;
  }

  /** The device session's MQTT client and topics while connected as a device; undefined otherwise. */
  get current(): { client: MqttClient; topics: DeviceTopics } | undefined {
    return this.linkRef && this.topicsRef ? { client: this.linkRef.client, topics: this.topicsRef } : undefined;
  }

  /** Run the loop in the background. */
  start(): void {
    if (this.done) return;
    this.done = this.run().catch((e) => {
      if (!this.stopped) this.log.error({ err: e }, 'uplink stopped');
    });
  }

  /** End the claim, the waits and the retries now; the device link stays up until stop(). */
  abort(): void {
    this.stopped = true;
    this.abortController.abort();
  }

  /** Abort, end the device link (retained offline), and wait for the loop to return. */
  async stop(): Promise<void> {
    this.abort();
    this.wake?.();
    await this.done;
  }

  private async caPem(): Promise<string | null> {
    const f = this.o.config.mqtt.caFile;
    if (!f) return null;
    try {
      return await readFile(f, 'utf8');
    } catch (e) {
      throw new CallboxError(ErrorCode.ConfigInvalid, `mqtt.caFile ${f} cannot be read: ${describeError(e)}`);
    }
  }

  private async run(): Promise<void> {
    const m = this.o.config.mqtt;
    const box = this.o.config.box;
    const signal = this.abortController.signal;
    let refusals = 0;
    while (!signal.aborted) {
      let creds = await this.o.credentials.load((reason, movedTo) =>
        this.log.error({ reason, movedTo }, 'stored credentials are damaged: set aside, claiming again'),
      );
      if (!creds) {
        this.o.onState('unprovisioned', 'waiting for provisioning');
        this.log.warn({ serial: box.serial }, 'no credentials: waiting for provisioning (claim)');
        creds = await claimUntilApproved({
          url: m.url,
          urls: m.urls,
          caPem: await this.caPem(),
          serial: box.serial,
          claimSecret: box.claimSecret,
          model: box.model,
          softwareVersion: this.o.softwareVersion(),
          bootId: this.o.bootId,
          keepaliveS: m.keepaliveS,
          connectTimeoutMs: m.connectTimeoutMs,
          reconnectMinMs: m.reconnectMinMs,
          reconnectMaxMs: m.reconnectMaxMs,
          requestTimeoutMs: m.requestTimeoutMs,
          retryMs: m.claimRetryS * 1000,
          signal,
          onState: (s, detail) => this.o.onState('unprovisioned', detail ?? s),
        });
        await this.o.credentials.save(creds);
        refusals = 0;
      }
      const outcome = await this.deviceSession(creds);
      if (outcome === 'stopped') return;
      if (outcome === 'connected-then-refused') refusals = 1;
      else refusals++;
      if (refusals >= (this.o.revokeAfterRefusals ?? 3)) {
        const movedTo = await this.o.credentials.revoke();
        this.log.error(
          { deviceId: creds.deviceId, movedTo },
          'the fleet refused this box’s credentials: treating them as revoked, back to waiting for provisioning',
        );
        this.o.onState('revoked', 'credentials revoked: waiting for provisioning');
        refusals = 0;
      } else {
        // sleep() removes its abort listener when the wait ends: refusals do not pile listeners on the signal.
        await sleep(
          backoffDelay(refusals, {
            initial: m.reconnectMinMs,
            max: m.reconnectMaxMs,
            jitter: 'equal',
            ...(this.o.random ? { random: this.o.random } : {}),
          }),
          signal,
        );
      }
    }
  }

  /** One run of the device link; ends when stopped or when the broker refuses the credentials. */
  private async deviceSession(creds: Credentials): Promise<Outcome> {
    const m = this.o.config.mqtt;
    const signal = this.abortController.signal;
    const topics = deviceTopics(creds.deviceId);
    this.topicsRef = topics;
    const link = new Link({
      url: creds.brokerUrl ?? m.url,
      urls: m.urls,
      caPem: creds.caPem ?? (await this.caPem()),
      identity: { kind: 'device', id: creds.deviceId, username: creds.username, password: creds.password },
      keepaliveS: m.keepaliveS,
      connectTimeoutMs: m.connectTimeoutMs,
      reconnectMinMs: m.reconnectMinMs,
      reconnectMaxMs: m.reconnectMaxMs,
      bootId: this.o.bootId,
      softwareVersion: this.o.softwareVersion(),
      ...(this.o.random ? { random: this.o.random } : {}),
    });
    this.linkRef = link;
    const unwire = wireOutbox(link, this.o.outbox, creds.deviceId);
    let everOnline = false;
    let refused = false;
    link.on('state', (s, detail) => {
      // "online" is set once the subscriptions are in place (commands can reach the box).
      if (s === 'offline' || s === 'connecting') this.o.onState(s, detail);
    });
    const client = () => link.client;
    link.start();
    const responder = new RpcResponder(client(), DEVICE_COMMANDS, this.o.handlers, {
      requestFilter: topics.cmdReq,
      log: this.log,
      side: 'this box',
      // A command that ran and is redelivered after its expiry gets its kept answer, not "expired".
      answeredBefore: (id) => this.o.commands.answeredBefore(id),
    });
    const requester = new RpcRequester(client(), FLEET_REQUESTS, {
      responseFilter: topics.fleetRes,
      defaultTimeoutMs: m.requestTimeoutMs,
      log: this.log,
    });
    client().on('message', (topic, payload) => {
      // A failure leaves the box on its old settings; the fleet's config_drift alert sees that.
      if (topic === topics.configDesired && payload.length > 0)
        background(this.offerConfig(payload, link), this.log, 'applying the desired configuration');
    });
    // Listeners and subscriptions are in place before the connection is: with a persistent
    // session the broker delivers what it queued (commands, configuration) right after CONNACK.
    // mqtt.js sends the subscriptions once connected; later reconnects keep the session's.
    const subscribed = Promise.all([
      client().subscribeAsync(topics.configDesired, { qos: 1 }),
      responder.start(),
      requester.start(),
    ]);
    subscribed.catch((e) => this.log.warn({ err: e }, 'subscriptions failed'));
    let onlineRun = 0;
    const onOnline = async () => {
      everOnline = true;
      const run = ++onlineRun;
      try {
        // Subscribed first, then fetch the whole desired configuration: a change made while
        // the box was away arrives one way or the other, never neither.
        await subscribed;
      } catch (e) {
        this.log.warn({ err: e }, 'subscriptions after connect failed');
      }
      if (link.online) this.o.onState('online');
      if (this.lastReport) await this.publishReport(this.lastReport, link);
      // Asked again with backoff until the fleet answers (a fleet restarting loses the request),
      // for as long as this connection lasts; the next connect starts again.
      await retryWithBackoff(
        async () => {
          const desired = await requester.request(topics.fleetReq, 'config.get', {});
          if (desired) await this.offerConfig(JSON.stringify(desired), link);
        },
        {
          minMs: m.reconnectMinMs,
          maxMs: m.reconnectMaxMs,
          ...(this.o.random ? { random: this.o.random } : {}),
          active: () => run === onlineRun && link.online && this.linkRef === link,
          signal,
          onFailure: (err, attempt, waitMs) =>
            this.log.warn({ err, attempt: attempt + 1, retryInMs: waitMs }, 'configuration fetch failed; asking again'),
        },
      );
      await this.o.onConfigured?.();
    };
    link.on('online', () => {
      onOnline().catch((e) => this.log.error({ err: e }, 'connect handling failed'));
    });
    const result = await new Promise<'stopped' | 'refused'>((resolve) => {
      this.wake = () => resolve('stopped');
      if (signal.aborted) resolve('stopped');
      link.on('unauthorized', () => {
        refused = true;
        resolve('refused');
      });
    });
    this.wake = undefined;
    requester.stop();
    unwire();
    // The responder is not stopped (that would unsubscribe): the persistent session keeps the
    // subscriptions, so the broker queues commands and configuration while the box restarts.
    if (result === 'stopped') await link.stop('shutdown');
    else await link.kill();
    this.linkRef = undefined;
    if (refused) {
      this.log.warn({ deviceId: creds.deviceId }, 'the broker refused the device credentials');
      return everOnline ? 'connected-then-refused' : 'refused';
    }
    return 'stopped';
  }

  private async offerConfig(payload: Buffer | string, link: Link): Promise<void> {
    // Stopping: the modules have let go of the settings (they could not check a change); the next
    // start asks for the desired configuration again.
    if (this.abortController.signal.aborted) return;
    const report = await this.o.settings.offer(payload);
    if (!report) return;
    this.lastReport = report;
    this.o.onReport(report);
    await this.publishReport(report, link);
  }

  private async publishReport(report: ConfigReported, link: Link): Promise<void> {
    if (!this.topicsRef || !link.online) return;
    await link
      .publish(this.topicsRef.configReported, JSON.stringify(report), { qos: 1, retain: true })
      .catch((e) => this.log.warn({ err: e }, 'configuration report not published; sent again at the next connect'));
  }
}
