/**
 * Provisioning by claim. A new box knows only its factory claim credential
 * (serial and claim secret from its label). It connects as
 * "claim:<SERIAL>", which the broker lets do nothing but publish on
 * callbox/v1/_claim/<SERIAL>/req and read .../res, asks to be provisioned,
 * and waits: "pending" (an operator has not approved yet) and "rejected"
 * are asked again every claimRetryS; "approved" carries the device id, its
 * own credentials and the CA to pin, which the caller stores (0600,
 * atomically) before reconnecting as the device.
 */
import { sleep } from '../../shared/backoff.js';
import { type ClaimRequest, ClaimResponseSchema } from '../../shared/contract/messages.js';
import { claimTopics, usernameFor } from '../../shared/contract/topics.js';
import { CallboxError, ErrorCode } from '../../shared/errors.js';
import { newRequestId } from '../../shared/ids.js';
import { getLogger, type Logger } from '../../shared/log.js';
import type { Static } from '../../shared/schema.js';
import { decodePayload } from '../../shared/validate.js';
import type { Credentials } from './credentials.js';
import { Link } from './link.js';

export type ClaimState = 'connecting' | 'waiting' | 'pending' | 'rejected' | 'refused';

export interface ClaimOptions {
  url: string;
  /** More brokers of the same engine (mqtt.urls). */
  urls?: readonly string[];
  caPem: string | null;
  serial: string;
  claimSecret: string;
  model: string;
  softwareVersion: string;
  bootId: string;
  keepaliveS: number;
  connectTimeoutMs: number;
  reconnectMinMs: number;
  reconnectMaxMs: number;
  requestTimeoutMs: number;
  retryMs: number;
  signal: AbortSignal;
  onState?: (state: ClaimState, detail?: string) => void;
  log?: Logger;
}

/** The credentials in an approved claim answer. */
function credentialsOf(res: Static<typeof ClaimResponseSchema>): Credentials | undefined {
  if (res.state !== 'approved') return undefined;
  return {
    v: 1,
    deviceId: res.deviceId,
    username: res.username,
    password: res.password,
    caPem: res.caPem,
    brokerUrl: res.brokerUrl,
    provisionedAt: new Date().toISOString(),
  };
}

/** Claim until approved (resolves with the credentials) or aborted (rejects with ShuttingDown). */
export async function claimUntilApproved(o: ClaimOptions): Promise<Credentials> {
  const log = o.log ?? getLogger('device:uplink:provisioning');
  if (!o.claimSecret) {
    throw new CallboxError(
      ErrorCode.LinkNotProvisioned,
      'box.claimSecret is empty: this box has no credentials and cannot ask to be provisioned; set the claim secret from its label',
    );
  }
  for (;;) {
    const got = await claimSession(o, log);
    if (got !== 'refused') return got;
    o.onState?.('refused', 'the broker refused the claim credential');
    log.error(
      { serial: o.serial },
      'the broker refused the claim credential (serial or claim secret wrong?); retrying',
    );
    await sleep(o.retryMs, o.signal);
  }
}

type Outcome = Credentials | { state: 'pending' | 'rejected' | 'timeout'; reason: string };

/** One connection as the claim identity; 'refused' when the broker refuses the claim credential. */
async function claimSession(o: ClaimOptions, log: Logger): Promise<Credentials | 'refused'> {
  const topics = claimTopics(o.serial);
  const link = new Link({
    url: o.url,
    ...(o.urls ? { urls: o.urls } : {}),
    caPem: o.caPem,
    identity: {
      kind: 'claim',
      id: o.serial,
      username: usernameFor({ kind: 'claim', serial: o.serial }),
      password: o.claimSecret,
    },
    keepaliveS: o.keepaliveS,
    connectTimeoutMs: o.connectTimeoutMs,
    reconnectMinMs: o.reconnectMinMs,
    reconnectMaxMs: o.reconnectMaxMs,
    bootId: o.bootId,
    softwareVersion: o.softwareVersion,
    log,
  });
  let answer: ((payload: Buffer) => void) | undefined;
  let interrupt: (() => void) | undefined;
  const wake = () => interrupt?.();
  link.on('unauthorized', wake);
  link.on('online', wake);
  o.signal.addEventListener('abort', wake);
  o.onState?.('connecting');
  link.start();
  // Ops approving while the box waits between requests: the fleet pushes the approval, answering the box's last
  // request (claims.approve), and the box takes it at once instead of at its next retry.
  let lastReqId: string | undefined;
  let pushed: Credentials | undefined;
  let wakeRetry: (() => void) | undefined;
  link.client.on('message', (topic, payload) => {
    if (topic !== topics.res) return;
    if (answer) return answer(payload);
    try {
      const res = decodePayload(ClaimResponseSchema, payload, 'claim response');
      const creds = res.id === lastReqId ? credentialsOf(res) : undefined;
      if (creds) {
        pushed = creds;
        wakeRetry?.();
      }
    } catch (e) {
      log.warn({ err: e }, 'malformed claim response ignored');
    }
  });
  try {
    for (;;) {
      if (o.signal.aborted) throw new CallboxError(ErrorCode.ShuttingDown, 'provisioning stopped');
      if (link.state === 'unauthorized') return 'refused';
      if (!link.online) {
        await new Promise<void>((resolve) => {
          interrupt = resolve;
        });
        continue;
      }
      const req: ClaimRequest = {
        v: 1,
        id: newRequestId(),
        serial: o.serial,
        model: o.model,
        softwareVersion: o.softwareVersion,
      };
      lastReqId = req.id;
      const result = await new Promise<Outcome>((resolve) => {
        const timer = setTimeout(
          () => finish({ state: 'timeout', reason: `no answer within ${o.requestTimeoutMs} ms` }),
          o.requestTimeoutMs,
        );
        function finish(r: Outcome) {
          clearTimeout(timer);
          answer = undefined;
          interrupt = undefined;
          resolve(r);
        }
        interrupt = () => {
          if (o.signal.aborted || !link.online) finish({ state: 'timeout', reason: 'interrupted' });
        };
        answer = (payload) => {
          let res: Static<typeof ClaimResponseSchema>;
          try {
            res = decodePayload(ClaimResponseSchema, payload, 'claim response');
          } catch (e) {
            log.warn({ err: e }, 'malformed claim response ignored');
            return;
          }
          if (res.id !== req.id) return;
          const creds = credentialsOf(res);
          if (creds) finish(creds);
          else if (res.state !== 'approved') finish({ state: res.state, reason: res.reason });
        };
        link.client
          .subscribeAsync(topics.res, { qos: 1 })
          .then(() => link.publish(topics.req, JSON.stringify(req), { qos: 1 }))
          .catch((e: Error) => finish({ state: 'timeout', reason: e.message }));
      });
      if ('deviceId' in result) {
        log.info({ serial: o.serial, deviceId: result.deviceId }, 'provisioned: claim approved');
        return result;
      }
      if (o.signal.aborted) continue;
      if (result.state === 'pending' || result.state === 'rejected') {
        o.onState?.(result.state, result.reason);
        log.info(
          { serial: o.serial, state: result.state, reason: result.reason },
          'claim not approved yet; asking again later',
        );
      } else {
        o.onState?.('waiting', result.reason);
        log.warn({ serial: o.serial, reason: result.reason }, 'claim request unanswered; asking again later');
      }
      await sleep(o.retryMs, o.signal, (wake) => {
        wakeRetry = wake;
      });
      wakeRetry = undefined;
      if (pushed) {
        log.info({ serial: o.serial, deviceId: pushed.deviceId }, 'provisioned: claim approved by ops (pushed)');
        return pushed;
      }
    }
  } finally {
    o.signal.removeEventListener('abort', wake);
    await link.kill();
  }
}
