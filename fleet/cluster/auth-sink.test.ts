/**
 * The credential sink's bucket writes meet JetStream leader elections (just
 * after the engine starts, a few seconds after a node dies): those answers
 * are tried again, anything else fails at once.
 */
import { afterEach, describe, expect, it, vi } from 'vitest';
import { retryJetStream, transientJetStreamError } from './auth-sink.js';

const timeout = Object.assign(new Error('TIMEOUT'), { code: 'TIMEOUT' });
const noResponders = Object.assign(new Error('503'), { code: '503' });
const denied = Object.assign(new Error('Permissions Violation for Publish to "$JS.API.STREAM.CREATE.x"'), {
  code: 'PERMISSIONS_VIOLATION',
});

describe('retryJetStream', () => {
  afterEach(() => {
    vi.useRealTimers();
  });

  it('tells a leader election from a refusal', () => {
    expect(transientJetStreamError(timeout)).toBe(true);
    expect(transientJetStreamError(noResponders)).toBe(true);
    expect(transientJetStreamError({ api_error: { err_code: 10008 } })).toBe(true);
    expect(transientJetStreamError(denied)).toBe(false);
    expect(transientJetStreamError(new Error('wrong last sequence: 4'))).toBe(false);
  });

  it('writes once the engine answers again', async () => {
    vi.useFakeTimers();
    const answers = [timeout, noResponders];
    let calls = 0;
    const write = retryJetStream('a login', async () => {
      calls++;
      const e = answers.shift();
      if (e) throw e;
      return 'written';
    });
    await vi.advanceTimersByTimeAsync(5000);
    await expect(write).resolves.toBe('written');
    expect(calls).toBe(3);
  });

  it('fails at once on a refusal, and after its time on an engine that stays away', async () => {
    let calls = 0;
    await expect(
      retryJetStream('a login', async () => {
        calls++;
        throw denied;
      }),
    ).rejects.toBe(denied);
    expect(calls).toBe(1);
    vi.useFakeTimers();
    const stuck = retryJetStream(
      'a login',
      async () => {
        throw timeout;
      },
      3000,
    );
    const settled = stuck.catch((e: unknown) => e);
    await vi.advanceTimersByTimeAsync(10_000);
    expect(await settled).toBe(timeout);
  });
});
