/**
 * Before the fleet opens or creates anything (store, keys, data folder), the embedded broker's ports are tried:
 * a taken port stops the start at once with the message that says what to do, and nothing is written.
 */
import { createServer } from 'node:net';
import type { FleetConfig } from '../config.js';
import { portInUseError } from './supervisor.js';

function tryListen(host: string, port: number): Promise<NodeJS.ErrnoException | null> {
  return new Promise((resolve) => {
    const server = createServer();
    server.once('error', (e: NodeJS.ErrnoException) => resolve(e));
    server.listen({ host, port, exclusive: true }, () => server.close(() => resolve(null)));
  });
}

/** Rejects with BrokerPortInUse naming the first taken listener port (port 0, null: nothing to check). */
export async function assertBrokerPortsFree(mqtt: FleetConfig['mqtt']): Promise<void> {
  if (mqtt.mode !== 'embedded') return;
  const listeners = [
    ['tcp', mqtt.port],
    ['tls', mqtt.tlsPort],
    ['ws', mqtt.wsPort],
  ] as const;
  for (const [listener, port] of listeners) {
    if (!port) continue;
    const e = await tryListen(mqtt.host, port);
    if (e?.code === 'EADDRINUSE') throw portInUseError(listener, mqtt.host, port);
    // Other errors (EACCES on a low port, an unknown address) are left to the broker, which reports them.
  }
}
