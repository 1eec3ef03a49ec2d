/**
 * A box configured with several brokers of one engine (mqtt.url plus
 * mqtt.urls) is on one at a time and moves to the next when its broker
 * fails, and back round the list when that one fails too.
 */
import { afterEach, describe, expect, it } from 'vitest';
import { Link } from '../device/uplink/link.js';
import { newBootId } from '../shared/ids.js';
import { waitFor } from '../shared/wait.js';
import { startBroker, type TestBroker } from './uplink-helpers.js';

const cleanups: (() => Promise<unknown>)[] = [];
afterEach(async () => {
  for (const c of cleanups.splice(0).reverse()) await c();
});

describe('uplink with several brokers', () => {
  it('moves to the next broker when its broker fails, and on round the list', async () => {
    const brokers: TestBroker[] = [];
    for (let i = 0; i < 3; i++) {
      const b = await startBroker();
      cleanups.push(() => b.close());
      brokers.push(b);
    }
    const [b1, b2, b3] = brokers as [TestBroker, TestBroker, TestBroker];
    const link = new Link({
      url: b1.url,
      urls: [b1.url, b2.url, b3.url],
      identity: { kind: 'device', id: 'box-multi', username: 'box-multi', password: 'secret-secret-secret' },
      keepaliveS: 5,
      connectTimeoutMs: 2000,
      reconnectMinMs: 50,
      reconnectMaxMs: 200,
      bootId: newBootId(),
      softwareVersion: 'test',
    });
    expect(link.urls).toEqual([b1.url, b2.url, b3.url]);
    link.start();
    cleanups.push(() => link.stop());
    await waitFor(() => link.online, 'online');
    expect(link.currentUrl).toBe(b1.url);
    await b1.down();
    await waitFor(() => link.online && link.currentUrl === b2.url, 'online on the second broker');
    await b2.down();
    await waitFor(() => link.online && link.currentUrl === b3.url, 'online on the third broker');
    await b1.up();
    await b3.down();
    await waitFor(() => link.online && link.currentUrl === b1.url, 'back on the first broker');
  });

  it('checks every address against the TLS rule', () => {
    const link = new Link({
      url: 'mqtt://127.0.0.1:1883',
      urls: ['mqtt://10.0.0.2:1883'],
      identity: { kind: 'device', id: 'box-multi', username: 'box-multi', password: 'secret-secret-secret' },
      keepaliveS: 5,
      connectTimeoutMs: 2000,
      reconnectMinMs: 50,
      reconnectMaxMs: 200,
      bootId: newBootId(),
      softwareVersion: 'test',
    });
    expect(() => link.start()).toThrow(/mqtt\.urls: got mqtt:\/\/10\.0\.0\.2:1883, expected mqtts:\/\//);
  });
});
