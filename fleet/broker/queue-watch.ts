/**
 * External mode: the broker's queue, watched from its own figures, so that
 * a queue filling up is seen before Mosquitto starts dropping the fleet's
 * events, and a drop is never silent.
 *
 * Mosquitto publishes (retained, every sys_interval) how many messages its
 * store holds ($SYS/broker/store/messages/count: the queued messages of
 * every persistent session, the fleet's above all, plus retained ones) and
 * how many it dropped because a client's queue was full
 * ($SYS/broker/publish/messages/dropped, since it started). The fleet
 * subscribes to both (its role may read $SYS/broker/#) and:
 * - logs a warning when the store holds half of max_queued_messages
 *   (mqtt.externalMaxQueuedMessages), an error at 80 %, and "back to
 *   normal" below 40 %;
 * - logs an error for any drop, including drops that happened while the
 *   fleet was away (the first figure it reads after connecting);
 * - says each change on the fleet bus ('broker.queue'), for features and
 *   metrics.
 */
import { getLogger } from '../../shared/log.js';
import type { FleetBus } from '../bus.js';

export const BROKER_SYS_TOPICS = {
  stored: '$SYS/broker/store/messages/count',
  dropped: '$SYS/broker/publish/messages/dropped',
} as const;

export type QueueLevel = 'ok' | 'filling' | 'critical';

export interface BrokerQueueState {
  /** Messages the broker's store holds (null until the broker said). */
  stored: number | null;
  /** The per-client queue bound the broker was configured with. */
  limit: number;
  level: QueueLevel;
  /** Messages the broker dropped since it started (null until it said). */
  dropped: number | null;
}

const log = getLogger('fleet:broker');

export class BrokerQueueWatch {
  readonly state: BrokerQueueState;

  constructor(
    private readonly bus: FleetBus,
    limit: number,
  ) {
    this.state = { stored: null, limit, level: 'ok', dropped: null };
  }

  /** A message on a $SYS topic. Returns true if it was one of ours. */
  onSys(topic: string, payload: Buffer): boolean {
    if (topic !== BROKER_SYS_TOPICS.stored && topic !== BROKER_SYS_TOPICS.dropped) return false;
    const n = Number(payload.toString('utf8').trim());
    if (!Number.isFinite(n) || n < 0) {
      log.warn({ topic }, 'broker figure is not a number: ignored');
      return true;
    }
    if (topic === BROKER_SYS_TOPICS.stored) this.onStored(n);
    else this.onDropped(n);
    return true;
  }

  private onStored(n: number): void {
    const s = this.state;
    s.stored = n;
    const share = n / s.limit;
    let level: QueueLevel = s.level;
    if (share >= 0.8) level = 'critical';
    else if (share >= 0.5) level = s.level === 'critical' ? 'critical' : 'filling';
    else if (share < 0.4) level = 'ok';
    if (level === s.level) return;
    s.level = level;
    const fields = { stored: n, limit: s.limit, percent: Math.round(share * 100) };
    if (level === 'critical') {
      log.error(fields, "the broker's queue is nearly full: past the limit it DROPS the fleet's events");
    } else if (level === 'filling') {
      log.warn(fields, "the broker's queue is filling: the fleet is away or behind");
    } else {
      log.info(fields, "the broker's queue is back to normal");
    }
    this.bus.emit('broker.queue', { ...s });
  }

  private onDropped(n: number): void {
    const s = this.state;
    const before = s.dropped;
    s.dropped = n;
    if (before === null) {
      if (n > 0) {
        log.error(
          { dropped: n },
          'the broker has dropped messages since it started (a queue was full, maybe while the fleet was away): events are missing',
        );
        this.bus.emit('broker.queue', { ...s });
      }
      return;
    }
    if (n > before) {
      log.error({ dropped: n - before, total: n }, 'the broker DROPPED messages: a queue was full');
      this.bus.emit('broker.queue', { ...s });
    }
  }
}
