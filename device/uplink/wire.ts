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
    client.subscribe(topics.receipt, { qos: 1 }, (err) => {
      if (err) log.warn({ err: err.message }, 'receipt subscription failed; events are sent again after a timeout');
      if (mine === connection && link.online) outbox.attach(sender);
    });
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
