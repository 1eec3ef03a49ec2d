/**
 * Item 12: caller numbers are masked in logs whatever their shape. The
 * attack: a box publishes events whose number fields hold
 * "x+15553330001", "+15553330002abc" and two national numbers separated by
 * a space; the fleet refuses them and logs why, quoting the value. Before
 * the fix the one masking pattern let all three through in clear.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { MemoryLogStream, setupLogging } from '../../shared/log.js';

const logs = new MemoryLogStream();
setupLogging({ level: 'info', destination: logs });
const { connectClient, provisionBox, startTestFleet } = await import('../helpers/fleet.js');
const { deviceTopics } = await import('../../shared/contract/topics.js');
const { newBootId, newEventId } = await import('../../shared/ids.js');
const { recordAttack } = await import('./attacks.js');

type TF = Awaited<ReturnType<typeof startTestFleet>>;

describe('security 12: numbers in logs', () => {
  let tf: TF;
  beforeAll(async () => {
    tf = await startTestFleet();
  });
  afterAll(async () => {
    await tf?.close();
  });

  it('masks every shape of number in the fleet log lines', async () => {
    const box = await provisionBox(tf, 'SEC12-001');
    const c = await connectClient(tf.url, { username: box.username, password: box.password });
    const shapes = [
      { value: 'x+15553330001', secret: '555333000', tail: '0001' },
      { value: '+15553330002abc', secret: '555333000', tail: '0002' },
      { value: '07700900123 07700900124', secret: '0770090012', tail: '0124' },
    ];
    for (const [i, s] of shapes.entries()) {
      const e = {
        v: 1,
        id: newEventId(),
        deviceId: box.deviceId,
        bootId: newBootId(),
        seq: i + 1,
        at: new Date().toISOString(),
        type: 'call.incoming',
        body: { callId: `c${i}`, number: s.value, withheld: false, inHours: true, repeatCaller: false, waiting: false },
      };
      await c.publishAsync(deviceTopics(box.deviceId).events, JSON.stringify(e), { qos: 1 });
    }
    c.end(true);
    const rejected = () => logs.lines.filter((l) => l.msg === 'event rejected');
    await expect.poll(() => rejected().length, { timeout: 10_000 }).toBe(3);
    let refused = 0;
    const all = logs.text();
    for (const [i, s] of shapes.entries()) {
      const line = JSON.stringify(rejected()[i]);
      expect(line, s.value).toContain(s.tail); // the value is quoted, masked to its last four digits
      expect(all.includes(s.secret), s.value).toBe(false);
      refused++;
    }
    recordAttack({ item: 12, attack: 'numbers of odd shapes in logged values', attempts: shapes.length, refused });
  });
});
