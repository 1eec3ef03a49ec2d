/**
 * An ops user's connection to the fleet: logs in as ops:<user> and sends
 * OPS_METHODS requests on its own _ops/<user>/req topic. Used by the CLI,
 * the tests and anything else that drives the fleet from outside.
 */
import mqtt, { type IClientOptions, type MqttClient } from 'mqtt';
import { OPS_METHODS } from '../shared/contract/ops.js';
import type { ParamsOf, ResultOf } from '../shared/contract/rpc.js';
import { opsTopics } from '../shared/contract/topics.js';
import { CallboxError, describeError, ErrorCode, isCallboxError } from '../shared/errors.js';
import { type RequestOptions, RpcRequester } from '../shared/rpc.js';

type T = typeof OPS_METHODS;

export class OpsClient {
  private constructor(
    readonly client: MqttClient,
    private readonly requester: RpcRequester<T>,
    readonly user: string,
  ) {}

  static async connect(
    url: string,
    user: string,
    password: string,
    opts: { timeoutMs?: number; mqtt?: IClientOptions } = {},
  ): Promise<OpsClient> {
    const topics = opsTopics(user);
    const client = mqtt.connect(url, {
      username: `ops:${user}`,
      password,
      clientId: `ops-${user}-${Math.random().toString(16).slice(2, 10)}`,
      reconnectPeriod: 500,
      connectTimeout: 5000,
      ...opts.mqtt,
    });
    try {
      await new Promise<void>((resolve, reject) => {
        client.once('connect', () => resolve());
        client.once('error', reject);
        client.once('close', () => reject(new Error('connection closed')));
      });
    } catch (e) {
      client.end(true);
      const msg = describeError(e);
      const auth = /not authori[sz]ed|bad user/i.test(msg);
      throw new CallboxError(
        auth ? ErrorCode.NotAuthorized : ErrorCode.LinkDisconnected,
        auth
          ? `the broker at ${url} refused ops:${user}: wrong user or password (check --user and --password-file)`
          : `cannot reach the fleet's broker at ${url}: ${msg} (is the fleet running? check --url)`,
      );
    }
    client.removeAllListeners('error');
    client.on('error', () => undefined);
    const requester = new RpcRequester(client, OPS_METHODS, {
      responseFilter: topics.res,
      defaultTimeoutMs: opts.timeoutMs ?? 20_000,
    });
    await requester.start();
    return new OpsClient(client, requester, user);
  }

  call<M extends keyof T & string>(
    method: M,
    params: ParamsOf<T, M>,
    options: RequestOptions = {},
  ): Promise<ResultOf<T, M>> {
    return this.requester.request(opsTopics(this.user).req, method, params, options);
  }

  /**
   * Check that a Callbox fleet answers here (fleet.hello) within `timeoutMs`: a broker that takes the login but
   * has no fleet behind it (another Mosquitto, a stopped fleet's external broker) fails fast, naming the URL.
   */
  async hello(url: string, timeoutMs = 1000): Promise<void> {
    try {
      await this.call('fleet.hello', {}, { timeoutMs });
    } catch (e) {
      if (isCallboxError(e, ErrorCode.UnknownMethod)) return; // a fleet older than fleet.hello
      if (isCallboxError(e, ErrorCode.RequestTimeout)) {
        throw new CallboxError(
          ErrorCode.LinkDisconnected,
          `${url} is not a Callbox fleet: a broker there took the login of ops:${this.user} but no fleet answered ` +
            `within ${timeoutMs} ms (another MQTT broker on that port? check --url or --data-dir)`,
        );
      }
      throw e;
    }
  }

  async close(): Promise<void> {
    this.requester.stop();
    await this.client.endAsync(true).catch(() => undefined);
  }
}
