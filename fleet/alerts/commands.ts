/**
 * How the alert engine commands a box (forwarding.set, sms.send, panic.ack):
 * a small seam so the engine can be tested with a stand-in, and one
 * implementation over the fleet's MQTT client with the shared RpcRequester.
 */
import type { MqttClient } from 'mqtt';
import { DEVICE_COMMANDS, type DeviceCommand, type ParamsOf, type ResultOf } from '../../shared/contract/rpc.js';
import { deviceTopics, FLEET_SUBSCRIPTIONS } from '../../shared/contract/topics.js';
import { getLogger } from '../../shared/log.js';
import { RpcRequester } from '../../shared/rpc.js';

export interface BoxCommands {
  send<M extends DeviceCommand>(
    deviceId: string,
    method: M,
    params: ParamsOf<typeof DEVICE_COMMANDS, M>,
    /** expiresInMs: the box refuses the command this long after it was sent (default: timeoutMs). */
    opts?: { timeoutMs?: number; expiresInMs?: number },
  ): Promise<ResultOf<typeof DEVICE_COMMANDS, M>>;
}

/** Device commands over MQTT (callbox/v1/<id>/cmd/req -> cmd/res). Call start() once connected. */
export class MqttBoxCommands implements BoxCommands {
  private readonly requester: RpcRequester<typeof DEVICE_COMMANDS>;

  constructor(client: MqttClient, defaultTimeoutMs: number) {
    this.requester = new RpcRequester(client, DEVICE_COMMANDS, {
      responseFilter: FLEET_SUBSCRIPTIONS.cmdRes,
      defaultTimeoutMs,
      log: getLogger('fleet:alerts:commands'),
      expires: true,
    });
  }

  start(): Promise<void> {
    return this.requester.start();
  }

  stop(): void {
    this.requester.stop();
  }

  send<M extends DeviceCommand>(
    deviceId: string,
    method: M,
    params: ParamsOf<typeof DEVICE_COMMANDS, M>,
    opts: { timeoutMs?: number; expiresInMs?: number } = {},
  ): Promise<ResultOf<typeof DEVICE_COMMANDS, M>> {
    return this.requester.request(deviceTopics(deviceId).cmdReq, method, params, {
      ...(opts.timeoutMs ? { timeoutMs: opts.timeoutMs } : {}),
      ...(opts.expiresInMs ? { expiresInMs: opts.expiresInMs } : {}),
    });
  }
}
