/**
 * A box as the dashboard's tests need it: a real MQTT client with the box's own credentials that says it
 * is online (retained status, a last will of offline), sends telemetry and events, and drops off the
 * network without a goodbye (the broker then publishes its will).
 */
import type { MqttClient } from 'mqtt';
import type { EventBody, EventType } from '../../shared/contract/events.js';
import { DEVICE_COMMANDS } from '../../shared/contract/rpc.js';
import { deviceTopics } from '../../shared/contract/topics.js';
import { newBootId, newEventId } from '../../shared/ids.js';
import { RpcResponder } from '../../shared/rpc.js';
import { connectClient } from '../helpers/fleet.js';

export class TestBox {
  client: MqttClient | undefined;
  private seq = 0;
  private readonly bootId = newBootId();
  readonly topics: ReturnType<typeof deviceTopics>;
  /** The commands the fleet sent (method names), in order. */
  readonly commands: string[] = [];

  constructor(
    readonly url: string,
    readonly deviceId: string,
    private readonly creds: { username: string; password: string },
  ) {
    this.topics = deviceTopics(deviceId);
  }

  async connect(): Promise<void> {
    this.client = await connectClient(this.url, {
      ...this.creds,
      clientId: `${this.deviceId}-${Math.random().toString(16).slice(2, 8)}`,
      will: {
        topic: this.topics.status,
        payload: Buffer.from(JSON.stringify({ v: 1, state: 'offline', at: new Date().toISOString(), reason: 'will' })),
        qos: 1,
        retain: true,
      },
    });
    // Answers the commands the alert engine sends (SMS through the box, panic acknowledgement, forwarding).
    const responder = new RpcResponder(
      this.client,
      DEVICE_COMMANDS,
      {
        'sms.send': () => {
          this.commands.push('sms.send');
          return { parts: 1, references: [1] };
        },
        'panic.ack': () => {
          this.commands.push('panic.ack');
          return { acknowledged: true };
        },
        'voicemail.heard': (p) => {
          // The real box clears its voicemail light here when none is left unheard (device/voicemail/unheard.ts,
          // test/voicemail-greeting-silence-light.test.ts); this box records that it was told.
          this.commands.push(`voicemail.heard ${p.voicemailId}`);
          return { cleared: true, unheard: 0 };
        },
        'forwarding.set': (p) => {
          this.commands.push('forwarding.set');
          return { reason: 'unconditional' as const, enabled: p.enabled, number: p.number ?? null, confirmed: true };
        },
      },
      { requestFilter: this.topics.cmdReq },
    );
    await responder.start();
    await this.client.publishAsync(
      this.topics.status,
      JSON.stringify({ v: 1, state: 'online', at: new Date().toISOString(), bootId: this.bootId }),
      { qos: 1, retain: true },
    );
  }

  async telemetry(over: { signalDbm?: number | null; outboxDepth?: number; operator?: string } = {}): Promise<void> {
    await this.client?.publishAsync(
      this.topics.telemetry,
      JSON.stringify({
        v: 1,
        at: new Date().toISOString(),
        bootId: this.bootId,
        uptimeS: 60,
        softwareVersion: '1.2.3',
        modem: {
          state: 'ready',
          signalDbm: over.signalDbm === undefined ? -71 : over.signalDbm,
          registration: 'home',
          operator: over.operator ?? 'Testnet',
          model: 'EC25',
          firmware: 'EC25EFAR06A03M4G',
          simPresent: true,
        },
        freeDiskBytes: 2_000_000_000,
        outboxDepth: over.outboxDepth ?? 0,
        voicemailsPending: 0,
        configVersion: null,
      }),
      { qos: 0 },
    );
  }

  async event<K extends EventType>(type: K, body: EventBody<K>, at = new Date()): Promise<string> {
    const id = newEventId();
    this.seq++;
    await this.client?.publishAsync(
      this.topics.events,
      JSON.stringify({
        v: 1,
        id,
        deviceId: this.deviceId,
        bootId: this.bootId,
        seq: this.seq,
        at: at.toISOString(),
        type,
        body,
      }),
      { qos: 1 },
    );
    return id;
  }

  /** Off the network without DISCONNECT: the broker publishes the will (offline). */
  kill(): void {
    this.client?.stream.destroy();
    this.client?.end(true);
    this.client = undefined;
  }

  async close(): Promise<void> {
    await this.client?.endAsync();
    this.client = undefined;
  }
}
