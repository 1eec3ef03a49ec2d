import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { CallboxError, ErrorCode } from '../../shared/errors.js';
import { getLogger } from '../../shared/log.js';
import type { RequestContext } from '../../shared/rpc.js';
import { Store } from '../store/store.js';
import { COMMAND_RESULT_TTL_MS, CommandCache } from './command-cache.js';
import { UPLINK_MIGRATIONS } from './migrations.js';

async function cache() {
  const store = await Store.open({
    file: join(mkdtempSync(join(tmpdir(), 'callbox-cmd-')), 'box.db'),
    migrations: { uplink: UPLINK_MIGRATIONS },
  });
  return { store, cache: new CommandCache(() => store, getLogger('test:command-cache')) };
}

const ctx = (id: string) => ({ id }) as RequestContext;

describe('CommandCache', () => {
  it('runs a request id once: a repeat gets the kept answer, or the kept error', async () => {
    const { store, cache: c } = await cache();
    let runs = 0;
    const ok = c.idempotent('diagnostics.collect', async () => {
      runs++;
      return { n: runs } as never;
    });
    expect(await ok({} as never, ctx('r-1'))).toEqual({ n: 1 });
    expect(await ok({} as never, ctx('r-1'))).toEqual({ n: 1 });
    expect(await ok({} as never, ctx('r-2'))).toEqual({ n: 2 });
    expect(runs).toBe(2);
    expect(await c.answeredBefore('r-1')).toBe(true);
    expect(await c.answeredBefore('r-9')).toBe(false);

    let fails = 0;
    const bad = c.idempotent('sms.send', async () => {
      fails++;
      throw new CallboxError(ErrorCode.ValidationFailed, 'to: got "x", expected a phone number');
    });
    for (let i = 0; i < 2; i++) {
      const err = await Promise.resolve(bad({} as never, ctx('r-3'))).catch((e: unknown) => e);
      expect(err).toBeInstanceOf(CallboxError);
      expect(err).toMatchObject({ code: ErrorCode.ValidationFailed, message: 'to: got "x", expected a phone number' });
    }
    expect(fails).toBe(1);
    await store.close();
  });

  it('prune() forgets answers older than the TTL only', async () => {
    const { store, cache: c } = await cache();
    const h = c.idempotent('reboot', async () => ({ scheduledAt: 'x' }) as never);
    await h({} as never, ctx('old'));
    await h({} as never, ctx('new'));
    await store.run('UPDATE command_results SET at = ? WHERE id = ?', [Date.now() - COMMAND_RESULT_TTL_MS - 1, 'old']);
    await c.prune();
    expect(await c.answeredBefore('old')).toBe(false);
    expect(await c.answeredBefore('new')).toBe(true);
    await store.close();
  });
});
