import mqtt, { type MqttClient } from 'mqtt';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startTestBroker, type TestBroker } from '../test/helpers/aedes.js';
import { DEVICE_COMMANDS } from './contract/rpc.js';
import { deviceTopics } from './contract/topics.js';
import { CallboxError, ErrorCode, isCallboxError } from './errors.js';
import { newRequestId } from './ids.js';
import { RpcRequester, RpcResponder } from './rpc.js';

describe('request/response over MQTT 3.1.1 (real aedes over TCP)', () => {
  let b: TestBroker;
  let fleet: MqttClient;
  let box: MqttClient;
  const topics = deviceTopics('cb-rpc-1');
  let calls = 0;
  let requester: RpcRequester<typeof DEVICE_COMMANDS>;
  let responder: RpcResponder<typeof DEVICE_COMMANDS>;

  beforeAll(async () => {
    b = await startTestBroker();
    fleet = await mqtt.connectAsync(b.url, { protocolVersion: 4, clientId: 'fleet-test' });
    box = await mqtt.connectAsync(b.url, { protocolVersion: 4, clientId: 'box-test' });
    responder = new RpcResponder(
      box,
      DEVICE_COMMANDS,
      {
        'sms.send': async ({ text }) => {
          calls++;
          if (text === 'fail') throw new CallboxError(ErrorCode.ModemCommandFailed, 'AT+CMGS: +CMS ERROR: 500');
          if (text === 'crash') throw new Error('boom');
          return { parts: 1, references: [calls] };
        },
        'indicators.test': () => new Promise(() => undefined), // never answers
      },
      { requestFilter: topics.cmdReq },
    );
    await responder.start();
    requester = new RpcRequester(fleet, DEVICE_COMMANDS, {
      responseFilter: 'callbox/v1/+/cmd/res',
      defaultTimeoutMs: 2000,
    });
    await requester.start();
  });

  afterAll(async () => {
    requester.stop();
    await responder.stop();
    await fleet.endAsync();
    await box.endAsync();
    await b.close();
  });

  it('answers a request with the handler result', async () => {
    const before = calls;
    const res = await requester.request(topics.cmdReq, 'sms.send', { to: '+15551234567', text: 'hello' });
    expect(res).toEqual({ parts: 1, references: [before + 1] });
  });

  it('executes a repeated request id once and answers it with the first answer', async () => {
    const id = newRequestId();
    const before = calls;
    const a = await requester.request(topics.cmdReq, 'sms.send', { to: '+15551234567', text: 'x' }, { id });
    const b2 = await requester.request(topics.cmdReq, 'sms.send', { to: '+15551234567', text: 'x' }, { id });
    expect(b2).toEqual(a);
    expect(calls).toBe(before + 1);
  });

  it('passes a handler error back with its code', async () => {
    const err = await requester
      .request(topics.cmdReq, 'sms.send', { to: '+15551234567', text: 'fail' })
      .catch((e: unknown) => e);
    expect(isCallboxError(err, ErrorCode.ModemCommandFailed)).toBe(true);
    expect((err as Error).message).toContain('+CMS ERROR: 500');
  });

  it('turns an unexpected handler failure into an Internal error, not a crash', async () => {
    const err = await requester
      .request(topics.cmdReq, 'sms.send', { to: '+15551234567', text: 'crash' })
      .catch((e: unknown) => e);
    expect(isCallboxError(err, ErrorCode.Internal)).toBe(true);
  });

  it('refuses invalid params on the requesting side, naming the field', async () => {
    const err = await requester
      .request(topics.cmdReq, 'sms.send', { to: '12345', text: 'x' } as never)
      .catch((e: unknown) => e);
    expect(isCallboxError(err, ErrorCode.ValidationFailed)).toBe(true);
    expect((err as Error).message).toContain('/to');
  });

  it('answers a malformed request from a raw client with a validation error naming the field', async () => {
    const id = newRequestId();
    const answer = new Promise<Record<string, unknown>>((resolve) => {
      fleet.on('message', (topic, payload) => {
        const m = JSON.parse(payload.toString()) as Record<string, unknown>;
        if (topic === topics.cmdRes && m.id === id) resolve(m);
      });
    });
    fleet.publish(
      topics.cmdReq,
      JSON.stringify({
        v: 1,
        id,
        method: 'sms.send',
        params: { to: '+15551234567', text: 'x', extra: 1 },
        sentAt: new Date().toISOString(),
      }),
      { qos: 1 },
    );
    const m = await answer;
    expect(m.ok).toBe(false);
    expect((m.error as { code: number; message: string }).code).toBe(ErrorCode.ValidationFailed);
    expect((m.error as { message: string }).message).toContain('/extra');
  });

  it('answers an unknown method with UnknownMethod', async () => {
    const err = await requester.request(topics.cmdReq, 'reboot', {}).catch((e: unknown) => e);
    expect(isCallboxError(err, ErrorCode.UnknownMethod)).toBe(true);
  });

  it('times out naming the method and the topic', async () => {
    const err = await requester
      .request(topics.cmdReq, 'indicators.test', {}, { timeoutMs: 150 })
      .catch((e: unknown) => e);
    expect(isCallboxError(err, ErrorCode.RequestTimeout)).toBe(true);
    expect((err as Error).message).toMatch(/indicators\.test.*cmd\/req.*150 ms/);
    expect(requester.inFlight).toBe(0);
  });
});
