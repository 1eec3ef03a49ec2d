/** Cluster mode settings checked before the fleet connects (fleet.ts). */
import type { IClientOptions } from 'mqtt';
import { CallboxError, ErrorCode } from '../../shared/errors.js';
import type { FleetConfig } from '../config.js';

/** The MQTT and NATS addresses of the engine; a clear error when either list is empty. */
export function clusterAddresses(m: FleetConfig['mqtt']): { mqttUrls: string[]; natsUrls: string[] } {
  if (m.clusterMqttUrls.length === 0 || m.clusterNatsUrls.length === 0) {
    throw new CallboxError(
      ErrorCode.ConfigInvalid,
      `cluster broker mode needs mqtt.clusterMqttUrls and mqtt.clusterNatsUrls (got ${m.clusterMqttUrls.length} and ${m.clusterNatsUrls.length} addresses): ` +
        "the engine nodes' MQTT and NATS listeners, as `npm run cluster -- status` prints them (docs/CLUSTER.md)",
    );
  }
  return { mqttUrls: m.clusterMqttUrls, natsUrls: m.clusterNatsUrls };
}

/** mqtt.js servers for several broker URLs: the client moves to the next at every reconnection. */
export function mqttServers(urls: readonly string[]): Pick<IClientOptions, 'servers'> {
  if (urls.length < 2) return {};
  return {
    servers: urls.map((url) => {
      const u = new URL(url);
      const protocol = (u.protocol === 'tls:' ? 'mqtts' : u.protocol.slice(0, -1)) as 'mqtt' | 'mqtts';
      return { host: u.hostname, port: u.port ? Number(u.port) : protocol === 'mqtts' ? 8883 : 1883, protocol };
    }),
  };
}
