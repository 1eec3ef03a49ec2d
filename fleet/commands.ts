/**
 * Commands to boxes (DEVICE_COMMANDS on callbox/v1/<id>/cmd/req, answers on
 * cmd/res) through one RpcRequester. Used by the ops API and by the alert
 * engine (forwarding.set for rollover, sms.send, panic.ack).
 */
import type { MqttClient } from 'mqtt';
import { DEVICE_COMMANDS, type DeviceCommand, type ParamsOf, type ResultOf } from '../shared/contract/rpc.js';
import { deviceTopics, FLEET_SUBSCRIPTIONS } from '../shared/contract/topics.js';
import { CallboxError, ErrorCode } from '../shared/errors.js';
import { getLogger } from '../shared/log.js';
import { type RequestOptions, RpcRequester } from '../shared/rpc.js';

type T = typeof DEVICE_COMMANDS;

/** What needs to command boxes takes this seam (the alert engine, the SMS channel; tests script it). */
export interface BoxCommands {
  send<M extends DeviceCommand>(
    deviceId: string,
    method: M,
    params: ParamsOf<T, M>,
    /** expiresInMs: the box refuses the command this long after it was sent (default: timeoutMs). */
    options?: RequestOptions,
  ): Promise<ResultOf<T, M>>;
}

export class DeviceCommands implements BoxCommands {
  private requester: RpcRequester<T> | undefined;

  constructor(private readonly defaultTimeoutMs: number) {}

  async start(client: MqttClient): Promise<void> {
    this.requester = new RpcRequester(client, DEVICE_COMMANDS, {
      responseFilter: FLEET_SUBSCRIPTIONS.cmdRes,
      defaultTimeoutMs: this.defaultTimeoutMs,
      log: getLogger('fleet:commands'),
      expires: true,
    });
    await this.requester.start();
  }

  stop(): void {
    this.requester?.stop();
  }

  /** Send a command to a box and wait for its answer (RequestTimeout if none). */
  send<M extends DeviceCommand>(
    deviceId: string,
    method: M,
    params: ParamsOf<T, M>,
    options: RequestOptions = {},
  ): Promise<ResultOf<T, M>> {
    if (!this.requester) {
      return Promise.reject(new CallboxError(ErrorCode.ShuttingDown, 'the fleet is not connected to its broker yet'));
    }
    return this.requester.request(deviceTopics(deviceId).cmdReq, method, params, options);
  }
}
