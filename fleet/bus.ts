/**
 * The fleet's internal event bus: how features (the alert engine, the HTTP
 * API, metrics) learn what happened without the ingest, presence or
 * provisioning code knowing about them. Typed; listeners are registered with
 * an owner and removed by owner on stop (the zigbee2mqtt eventBus habit).
 * A listener that throws is logged and does not stop the others.
 */
import { EventEmitter } from 'node:events';
import type { AnyEvent } from '../shared/contract/events.js';
import type { ConfigReported, Status, Telemetry } from '../shared/contract/messages.js';
import { getLogger } from '../shared/log.js';
import type { BrokerQueueState } from './broker/queue-watch.js';
import type { Box, StoredEvent } from './store/types.js';

export interface FleetBusEvents {
  /** An event stored for the first time (never for a duplicate). */
  'event.stored': { event: StoredEvent; raw: AnyEvent };
  /** A message refused by ingest (bad JSON, bad schema, device id mismatch). */
  'message.rejected': { topic: string; deviceId: string | null; reason: string };
  /** Sequence numbers skipped by a box (seen as a jump on arrival; may fill later). */
  'sequence.gap': { deviceId: string; fromSeq: number; toSeq: number };
  /** Presence changed: heartbeat timeout, will, or traffic after silence. */
  'presence.changed': {
    deviceId: string;
    online: boolean;
    at: string;
    reason: 'traffic' | 'status' | 'will' | 'timeout';
  };
  /** A caller's FHIR lookup finished (fleet/patients): the call log row has its answer. No patient data here. */
  'patients.lookup': { clinicId: string; deviceId: string; callId: string; state: string };
  /** The call log and call-back list changed for these clinics (fleet/patients, after its pass over stored events). */
  'calllog.changed': { clinicIds: string[] };
  /** Every valid telemetry message. */
  telemetry: { deviceId: string; telemetry: Telemetry };
  /** Every valid status message (retained ones included, flagged). */
  status: { deviceId: string; status: Status; retained: boolean };
  'config.reported': { deviceId: string; report: ConfigReported };
  /** A claim was approved, by ops or automatically. */
  'box.approved': { box: Box };
  'box.decommissioned': { box: Box };
  /** A box moved to another clinic (or none): boxes.assign. */
  'box.assigned': { box: Box };
  /** External broker: its queue's fill level changed, or it dropped messages (fleet/broker/queue-watch.ts). */
  'broker.queue': BrokerQueueState;
  /**
   * An alert changed (fleet/alerts): opened, acknowledged, resolved, reopened, escalated (a step sent),
   * exhausted (no step left), silenced; `by` who did it ("ops:alice", "link:bob", "engine").
   */
  'alert.changed': {
    alertId: string;
    clinicId: string;
    change: 'opened' | 'acknowledged' | 'resolved' | 'reopened' | 'escalated' | 'exhausted' | 'silenced';
    state: string;
    condition: string;
    severity: string;
    shortCode: string;
    deviceId: string | null;
    by: string;
    at: string;
  };
  /** The fleet's MQTT client (re)connected to the broker. */
  'broker.connected': { reconnect: boolean };
  'broker.disconnected': Record<string, never>;
}

export type FleetBusEvent = keyof FleetBusEvents;
type Listener<K extends FleetBusEvent> = (payload: FleetBusEvents[K]) => void | Promise<void>;

export class FleetBus {
  private readonly emitter = new EventEmitter();
  private readonly owned = new Map<object, { event: string; fn: (...args: unknown[]) => void }[]>();
  private readonly log = getLogger('fleet:bus');

  constructor() {
    this.emitter.setMaxListeners(100);
  }

  on<K extends FleetBusEvent>(event: K, owner: object, listener: Listener<K>): void {
    const fn = (payload: unknown) => {
      try {
        const r = listener(payload as FleetBusEvents[K]);
        if (r && typeof (r as Promise<void>).catch === 'function') {
          (r as Promise<void>).catch((err) => this.log.error({ err, event }, 'bus listener failed'));
        }
      } catch (err) {
        this.log.error({ err, event }, 'bus listener failed');
      }
    };
    this.emitter.on(event, fn);
    const list = this.owned.get(owner) ?? [];
    list.push({ event, fn: fn as (...args: unknown[]) => void });
    this.owned.set(owner, list);
  }

  emit<K extends FleetBusEvent>(event: K, payload: FleetBusEvents[K]): void {
    this.emitter.emit(event, payload);
  }

  /** Remove every listener registered by this owner. */
  removeAll(owner: object): void {
    for (const { event, fn } of this.owned.get(owner) ?? []) this.emitter.off(event, fn);
    this.owned.delete(owner);
  }

  listenerCount(event: FleetBusEvent): number {
    return this.emitter.listenerCount(event);
  }
}
