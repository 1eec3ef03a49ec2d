/** An in-process aedes broker on an ephemeral loopback port, for tests. */
import { once } from 'node:events';
import { type AddressInfo, createServer, type Server } from 'node:net';
import { Aedes, type AedesOptions } from 'aedes';

export interface TestBroker {
  broker: Aedes;
  server: Server;
  port: number;
  url: string;
  close(): Promise<void>;
}

export async function startTestBroker(options: AedesOptions = {}): Promise<TestBroker> {
  const broker = await Aedes.createBroker(options);
  const server = createServer((socket) => {
    socket.setNoDelay(true);
    broker.handle(socket);
  });
  server.listen(0, '127.0.0.1');
  await once(server, 'listening');
  const port = (server.address() as AddressInfo).port;
  return {
    broker,
    server,
    port,
    url: `mqtt://127.0.0.1:${port}`,
    close: async () => {
      await new Promise<void>((resolve) => broker.close(() => resolve()));
      await new Promise<void>((resolve) => server.close(() => resolve()));
    },
  };
}
