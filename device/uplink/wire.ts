import { deviceTopics } from '../../shared/contract/topics.js';
import type { Link } from './link.js';
import type { Outbox, Sender } from './outbox.js';

/** Publish the outbox through the link while it is online; returns the undo. */
export function wireOutbox(link: Link, outbox: Outbox, deviceId: string): () => void {
  const topic = deviceTopics(deviceId).events;
  const sender: Sender = { deviceId, send: (payload) => link.publish(topic, payload, { qos: 1 }) };
  const on = () => outbox.attach(sender);
  const off = () => outbox.detach();
  link.on('online', on);
  link.on('offline', off);
  if (link.online) on();
  return () => {
    link.off('online', on);
    link.off('offline', off);
    outbox.detach();
  };
}
