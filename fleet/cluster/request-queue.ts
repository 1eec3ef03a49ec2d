/**
 * Cluster mode: requests to the fleet (claims, ops, a box's fleet requests)
 * answered by exactly one worker. nats-server 2.9's MQTT gateway has no
 * shared subscriptions, so a worker subscribing to the request topics over
 * MQTT would get every request, and each would run it (an ops command twice,
 * a claim approved twice). The gateway publishes what MQTT clients send on
 * NATS subjects (`a/b/c` -> `a.b.c`); here each worker takes the request
 * subjects in one NATS queue group, and the engine gives each request to one
 * member. The request is then handled as if the worker's MQTT client had
 * received it, and answered over MQTT as before.
 *
 * A request that arrives while no worker is connected is not kept (core NATS):
 * the requester's timeout names the method, and it asks again.
 */
import { connect, type NatsConnection } from 'nats';
import { getLogger } from '../../shared/log.js';
import { mqttTopicToSubject } from './nats-acl.js';

const log = getLogger('fleet:cluster:requests');

/** The queue group every fleet worker joins. */
export const FLEET_QUEUE = 'callbox-fleet';

/** An MQTT topic filter as the gateway's NATS subject (mqttTopicToSubject, with '+' -> '*' and '#' -> '>'). */
export function subjectOfFilter(filter: string): string {
  return mqttTopicToSubject(filter)
    .split('.')
    .map((level) => (level === '+' ? '*' : level === '#' ? '>' : level))
    .join('.');
}

/** The MQTT topic of a subject the gateway published (cluster mode admits no '.' inside a topic level). */
export function topicOfSubject(subject: string): string {
  return subject.split('.').join('/');
}

export interface RequestQueueOptions {
  servers: string[];
  user: string;
  pass: string;
  /** This worker's connection name. */
  name: string;
  /** MQTT topic filters of the requests to take. */
  filters: string[];
  /** Hand one request to the worker (topic as the MQTT client would have seen it). */
  deliver: (topic: string, payload: Buffer) => void;
}

export class RequestQueue {
  private constructor(private readonly nc: NatsConnection) {}

  static async start(o: RequestQueueOptions): Promise<RequestQueue> {
    const nc = await connect({
      servers: o.servers,
      user: o.user,
      pass: o.pass,
      name: `${o.name}-requests`,
      maxReconnectAttempts: -1,
      reconnectTimeWait: 250,
    });
    for (const filter of o.filters) {
      const subject = subjectOfFilter(filter);
      nc.subscribe(subject, {
        queue: FLEET_QUEUE,
        callback: (err, msg) => {
          if (err) {
            log.warn({ err: err.message, subject }, 'request subscription error');
            return;
          }
          try {
            o.deliver(topicOfSubject(msg.subject), Buffer.from(msg.data));
          } catch (e) {
            log.error({ err: e, subject: msg.subject }, 'request not handled');
          }
        },
      });
    }
    await nc.flush(); // the subscriptions are at the engine before the worker says it is up
    log.info({ filters: o.filters, queue: FLEET_QUEUE }, 'taking fleet requests from the engine queue group');
    return new RequestQueue(nc);
  }

  async stop(): Promise<void> {
    await this.nc.drain().catch(() => this.nc.close());
  }
}
