import { ReceiptSchema } from '../../shared/contract/delivery.js';
import { deviceTopics } from '../../shared/contract/topics.js';
import { describeError } from '../../shared/errors.js';
import { getLogger } from '../../shared/log.js';
import { decodePayload } from '../../shared/validate.js';
import type { Link } from './link.js';
import type { Outbox, Sender } from './outbox.js';

const log = getLogger('device:uplink:wire');

/**
 * Publish the outbox through the link while it is online, and hand the
 * fleet's receipts to it; returns the undo. At every connect the receipt
 * topic is subscribed (again: a broker that lost the session has lost the
 * subscription) before the outbox starts sending, so the receipts of what
 * it sends have somewhere to go.
 */
export function wireOutbox(link: Link, outbox: Outbox, deviceId: string): () => void {
  const topics = deviceTopics(deviceId);
  const sender: Sender = { deviceId, send: (payload) => link.publish(topics.events, payload, { qos: 1 }) };
  let listening = false;
  let connection = 0;
  const onMessage = (topic: string, payload: Buffer) => {
    if (topic !== topics.receipt) return;
    try {
      outbox.onReceipt(decodePayload(ReceiptSchema, payload, 'receipt')).catch(() => undefined);
    } catch (e) {
      log.warn({ reason: describeError(e) }, 'receipt rejected');
    }
  };
  const on = () => {
    const client = link.client;
    if (!listening) {
      client.on('message', onMessage);
      listening = true;
    }
    const mine = ++connection;
    let attached = false;
    const subscribe = (attempt: number) => {
      client.subscribe(topics.receipt, { qos: 1 }, (err) => {
        if (mine !== connection || !link.online) return;
        if (!attached) {
          attached = true;
          outbox.attach(sender);
        }
        if (!err) return;
        // A broker that refused it for now (a clustered engine under load answers SUBACK 0x80 when its
        // store times out): ask again while this connection lasts, or no receipt would ever arrive here.
        const delay = Math.min(30_000, 500 * 2 ** Math.min(attempt, 6));
        log.warn({ err: err.message, retryMs: delay }, 'receipt subscription failed; asking again');
        setTimeout(() => {
          if (mine === connection && link.online) subscribe(attempt + 1);
        }, delay).unref();
      });
    };
    subscribe(0);
  };
  const off = () => {
    connection++;
    outbox.detach();
  };
  link.on('online', on);
  link.on('offline', off);
  if (link.online) on();
  return () => {
    link.off('online', on);
    link.off('offline', off);
    if (listening) link.client.off('message', onMessage);
    outbox.detach();
  };
}
