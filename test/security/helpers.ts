/** Real-client moves the attack tests share: claims with a chosen request id, viewers, counting sessions. */
import type { IClientOptions, MqttClient } from 'mqtt';
import type { ClaimResponse } from '../../shared/contract/messages.js';
import { claimTopics } from '../../shared/contract/topics.js';
import { connectClient, type TestFleet } from '../helpers/fleet.js';

/** Log in as claim:<serial> with `secret` and send a claim request with request id `id`; the answer or undefined. */
export async function claimWithId(
  url: string,
  serial: string,
  secret: string,
  id: string,
  timeoutMs = 5000,
  extra: IClientOptions = {},
): Promise<ClaimResponse | undefined> {
  const c = await connectClient(url, { username: `claim:${serial}`, password: secret, ...extra });
  try {
    const t = claimTopics(serial);
    await c.subscribeAsync(t.res, { qos: 1 });
    const answer = new Promise<ClaimResponse | undefined>((resolve) => {
      const timer = setTimeout(() => resolve(undefined), timeoutMs);
      c.on('message', (_topic, payload) => {
        const a = JSON.parse(payload.toString()) as ClaimResponse;
        if (a.id === id) {
          clearTimeout(timer);
          resolve(a);
        }
      });
    });
    await c.publishAsync(t.req, JSON.stringify({ v: 1, id, serial, model: 'cb1', softwareVersion: '1.0.0' }), {
      qos: 1,
    });
    return await answer;
  } finally {
    c.end(true);
  }
}

/** Create an ops user with this role; its MQTT login. */
export async function opsUser(
  tf: TestFleet,
  name: string,
  role: 'viewer' | 'operator' | 'admin',
): Promise<{ username: string; password: string }> {
  const u = await tf.admin.call('users.create', { name, role });
  return { username: u.username, password: u.password };
}

/** Resolves true when the client closes within `ms`. */
export function closesWithin(c: MqttClient, ms: number): Promise<boolean> {
  if (!c.connected) return Promise.resolve(true);
  return new Promise((resolve) => {
    const t = setTimeout(() => resolve(false), ms);
    c.once('close', () => {
      clearTimeout(t);
      resolve(true);
    });
  });
}
