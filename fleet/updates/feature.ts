/**
 * Over-the-air updates as a fleet feature (fleet/main.ts plugs it in): the release store and rollouts of
 * fleet/updates/rollouts.ts, their ops methods (RELEASE_OPS_METHODS), and the boxes' 'update.chunk' requests.
 * The trusted release signing keys are read at start from updates.publicKeyFiles.
 */
import { mkdir, readFile } from 'node:fs/promises';
import { parseTopic } from '../../shared/contract/topics.js';
import { CallboxError, describeError, ErrorCode } from '../../shared/errors.js';
import { getLogger } from '../../shared/log.js';
import { keyIdOf } from '../../shared/release-signature.js';
import type { Fleet, FleetFeature } from '../fleet.js';
import { Rollouts } from './rollouts.js';

const log = getLogger('fleet:updates');

export class UpdatesFeature implements FleetFeature {
  readonly name = 'updates';
  rollouts: Rollouts | undefined;

  constructor(private readonly fleet: Fleet) {}

  async start(): Promise<void> {
    const f = this.fleet;
    const c = f.config.updates;
    const publicKeys: string[] = [];
    for (const file of c.publicKeyFiles) {
      try {
        const pem = await readFile(file, 'utf8');
        keyIdOf(pem);
        publicKeys.push(pem);
      } catch (e) {
        throw new CallboxError(
          ErrorCode.ConfigInvalid,
          `updates.publicKeyFiles: ${file} is not a readable Ed25519 public key (PEM): ${describeError(e)}`,
        );
      }
    }
    await mkdir(c.dir, { recursive: true, mode: 0o700 });
    const rollouts = new Rollouts({
      store: f.store,
      registry: f.registry,
      client: () => f.client,
      dir: c.dir,
      publicKeys,
    });
    this.rollouts = rollouts;
    const ops = f.opsApi;
    if (!ops) throw new CallboxError(ErrorCode.Internal, 'the updates feature needs the fleet ops API running');
    ops.extend((actor) => ({
      'releases.create': async (p, ctx) => rollouts.createRelease(await actor('releases.create', ctx), p),
      'releases.chunk': async (p, ctx) => rollouts.chunk(await actor('releases.chunk', ctx), p),
      'releases.list': async (_p, ctx) => {
        await actor('releases.list', ctx);
        return rollouts.listReleases();
      },
      'rollouts.start': async (p, ctx) => rollouts.startRollout(await actor('rollouts.start', ctx), p),
      'rollouts.list': async (_p, ctx) => {
        await actor('rollouts.list', ctx);
        return f.store.listRollouts();
      },
      'rollouts.status': async (p, ctx) => {
        await actor('rollouts.status', ctx);
        return rollouts.status(p.id);
      },
      'rollouts.advance': async (p, ctx) => rollouts.advance(await actor('rollouts.advance', ctx), p.id),
      'rollouts.pause': async (p, ctx) => rollouts.pause(await actor('rollouts.pause', ctx), p.id, p.reason),
      'rollouts.resume': async (p, ctx) => rollouts.resume(await actor('rollouts.resume', ctx), p.id),
    }));
    f.moreFleetRequests['update.chunk'] = (p, ctx) => {
      const deviceId = parseTopic(ctx.topic)?.deviceId;
      if (!deviceId) throw new CallboxError(ErrorCode.NotAuthorized, 'update.chunk is for boxes');
      return rollouts.serveChunk(deviceId, p);
    };
    await rollouts.start();
    log.info(
      { keys: publicKeys.map(keyIdOf), dir: c.dir },
      publicKeys.length ? 'updates: trusted release keys loaded' : 'updates: no release key trusted (uploads refused)',
    );
  }

  stop(): void {
    this.rollouts?.stop();
    delete this.fleet.moreFleetRequests['update.chunk'];
  }
}

export function updatesFeature(): (fleet: Fleet) => UpdatesFeature {
  return (fleet) => new UpdatesFeature(fleet);
}
