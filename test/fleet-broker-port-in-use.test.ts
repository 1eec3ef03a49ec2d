/** A taken MQTT port stops the fleet with an error that says how to choose another port or use the running broker. */
import { createServer } from 'node:net';
import { describe, expect, it } from 'vitest';
import { ErrorCode } from '../shared/errors.js';
import { startTestFleet } from './helpers/fleet.js';

describe('embedded broker on a port in use', () => {
  it('fails with BrokerPortInUse naming the setting, the variable and external mode', async () => {
    const taken = createServer();
    await new Promise<void>((r) => taken.listen(0, '127.0.0.1', () => r()));
    const port = (taken.address() as { port: number }).port;
    try {
      await expect(startTestFleet({ mqtt: { port } })).rejects.toMatchObject({
        code: ErrorCode.BrokerPortInUse,
        message: expect.stringMatching(
          new RegExp(`127\\.0\\.0\\.1:${port}.*in use.*mqtt\\.port.*CALLBOX_FLEET__MQTT__PORT.*external`),
        ),
      });
    } finally {
      taken.close();
    }
  });
});
