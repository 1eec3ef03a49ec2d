/**
 * `fleet release upload | list | rollout …`: the online half of signed updates, through the ops API (the offline
 * half, keygen/sign/verify, is fleet/release-cli.ts):
 *   fleet release upload RELEASE.tar.gz        store a signed release in the fleet (resumes an interrupted upload)
 *   fleet release list                         releases the fleet holds
 *   fleet release rollout start VERSION [--boxes A,B] [--stages 10,50,100] [--max-failures N] [--max-failure-share F]
 *   fleet release rollout status [ID]          progress per box (default: the newest rollout)
 *   fleet release rollout advance|pause|resume ID [--reason TEXT]
 */
import { execFile } from 'node:child_process';
import { createHash } from 'node:crypto';
import { mkdtemp, open, readdir, readFile, rm, stat } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import type { Command } from 'commander';
import type { RolloutInfo, RolloutStatus } from '../../shared/contract/update.js';
import { CallboxError, ErrorCode } from '../../shared/errors.js';
import type { OpsClient } from '../ops-client.js';

const run = promisify(execFile);
/** Bytes per releases.chunk request (base64 fits the broker's default 256 KiB payload limit). */
const UPLOAD_CHUNK = 128 * 1024;

async function manifestOf(tarball: string): Promise<{ manifest: string; signature: string }> {
  const tmp = await mkdtemp(join(tmpdir(), 'callbox-upload-'));
  try {
    await run('tar', ['-xzf', tarball, '-C', tmp, '--wildcards', '*/MANIFEST.json', '*/MANIFEST.json.sig']).catch(
      () => undefined,
    );
    const [top] = await readdir(tmp);
    const manifest = top ? await readFile(join(tmp, top, 'MANIFEST.json'), 'utf8').catch(() => null) : null;
    const signature = top ? await readFile(join(tmp, top, 'MANIFEST.json.sig'), 'utf8').catch(() => null) : null;
    if (manifest === null || signature === null) {
      throw new CallboxError(
        ErrorCode.ValidationFailed,
        `${tarball} holds no MANIFEST.json with MANIFEST.json.sig: make it with npm run release and sign it with fleet release sign`,
      );
    }
    return { manifest, signature: signature.trim() };
  } finally {
    await rm(tmp, { recursive: true, force: true });
  }
}

function rolloutLine(r: RolloutInfo): string {
  return `rollout ${r.id}: ${r.version} ${r.state}${r.pausedReason ? ` (${r.pausedReason})` : ''}, stage ${r.stage + 1}/${r.stages.length} (${r.stages[r.stage]}%)`;
}

export function addRolloutCommands(
  release: Command,
  connect: () => Promise<OpsClient>,
  print: (value: unknown, human: () => string) => void,
): void {
  release
    .command('upload <tarball>')
    .description('store a signed release in the fleet (checked against its trusted keys; resumable)')
    .action(async (tarball: string) => {
      const { manifest, signature } = await manifestOf(tarball);
      const bytes = await readFile(tarball);
      const sha256 = createHash('sha256').update(bytes).digest('hex');
      const ops = await connect();
      let r = await ops.call('releases.create', { manifest, signature, sha256, totalBytes: bytes.length });
      const fh = await open(tarball, 'r');
      try {
        const size = (await stat(tarball)).size;
        while (r.state !== 'ready' && r.receivedBytes < size) {
          const n = Math.min(UPLOAD_CHUNK, size - r.receivedBytes);
          const buf = Buffer.alloc(n);
          await fh.read(buf, 0, n, r.receivedBytes);
          r = await ops.call('releases.chunk', {
            version: r.version,
            offset: r.receivedBytes,
            data: buf.toString('base64'),
          });
        }
      } finally {
        await fh.close();
      }
      print(r, () => `release ${r.version} (${r.arch}, key ${r.keyId}): ${r.totalBytes} bytes stored and verified`);
    });
  release
    .command('list')
    .description('releases the fleet holds')
    .action(async () => {
      const rows = await (await connect()).call('releases.list', {});
      print(rows, () =>
        rows.map((r) => `${r.version}\t${r.arch}\t${r.state}\t${r.totalBytes}\t${r.createdAt}`).join('\n'),
      );
    });
  const rollout = release.command('rollout').description('offer a release to boxes in stages');
  rollout
    .command('start <version>')
    .description('start a staged rollout (one at a time)')
    .option('--boxes <list>', 'comma-separated serials or device ids (default: every approved box)')
    .option('--stages <list>', 'comma-separated increasing percentages ending at 100', '10,50,100')
    .option('--max-failures <n>', 'pause at this many failed or rolled-back boxes', '1')
    .option('--max-failure-share <f>', 'or at this share (0-1) of the boxes offered', '0.2')
    .action(
      async (version: string, o: { boxes?: string; stages: string; maxFailures: string; maxFailureShare: string }) => {
        const r = await (await connect()).call('rollouts.start', {
          version,
          stages: o.stages.split(',').map((s) => Number(s.trim())),
          failureMaxCount: Number(o.maxFailures),
          failureMaxShare: Number(o.maxFailureShare),
          ...(o.boxes ? { boxes: o.boxes.split(',').map((s) => s.trim()) } : {}),
        });
        print(r, () => rolloutLine(r));
      },
    );
  rollout
    .command('list')
    .description('rollouts, newest first')
    .action(async () => {
      const rows = await (await connect()).call('rollouts.list', {});
      print(rows, () => rows.map((r) => rolloutLine(r)).join('\n'));
    });
  rollout
    .command('status [id]')
    .description('progress of every box (default: the newest rollout)')
    .action(async (id?: string) => {
      const s: RolloutStatus = await (await connect()).call('rollouts.status', id ? { id } : {});
      print(s, () =>
        [
          rolloutLine(s.rollout),
          `counts: ${Object.entries(s.counts)
            .map(([k, v]) => `${k} ${v}`)
            .join(', ')}`,
          ...s.boxes.map(
            (b) =>
              `  ${b.deviceId}\t${b.included ? 'in' : '-'}\t${b.state ?? ''}\t${b.running ?? ''}${b.reason ? `\t${b.reason}` : ''}`,
          ),
        ].join('\n'),
      );
    });
  for (const verb of ['advance', 'pause', 'resume'] as const) {
    const cmd = rollout.command(`${verb} <id>`).description(
      {
        advance: 'move to the next stage',
        pause: 'stop offering; withdraw offers not yet installed',
        resume: 'resume a paused rollout',
      }[verb],
    );
    if (verb === 'pause') cmd.option('--reason <text>', 'why (kept with the rollout)');
    cmd.action(async (id: string, o: { reason?: string }) => {
      const ops = await connect();
      const r =
        verb === 'advance'
          ? await ops.call('rollouts.advance', { id })
          : verb === 'pause'
            ? await ops.call('rollouts.pause', { id, ...(o.reason ? { reason: o.reason } : {}) })
            : await ops.call('rollouts.resume', { id });
      print(r, () => rolloutLine(r));
    });
  }
}
