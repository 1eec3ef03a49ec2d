import { UPDATE_MAX_CHUNK_BYTES } from '../../shared/contract/update.js';
import { Seconds, Section, Type } from '../../shared/schema.js';

/** The update section of the box configuration (owned by device/update). */
export const UpdateConfigSchema = Section(
  {
    root: Type.String({
      minLength: 1,
      default: '/opt/callbox',
      description:
        'install root: releases/<version>/ and the `current` link systemd starts from; over-the-air updates unpack beside the running release here',
    }),
    publicKeyFiles: Type.Array(Type.String({ minLength: 1 }), {
      default: [],
      description:
        'release signing public keys (PEM) the box trusts; an update signed by none of them is refused. Empty: updates are refused',
    }),
    confirmWithinS: Seconds(
      'a new release must pass its health checks (store, modem answers AT, MQTT connected, panic input watched) within this long after it was switched to, or it is rolled back',
      { default: 300, minimum: 5, maximum: 86_400 },
    ),
    maxStarts: Type.Integer({
      minimum: 1,
      maximum: 100,
      default: 3,
      description: 'starts of a new release without confirming its health before the guard rolls it back',
    }),
    chunkBytes: Type.Integer({
      minimum: 1024,
      maximum: UPDATE_MAX_CHUNK_BYTES,
      default: 32_768,
      description: 'bytes asked for per update.chunk request',
    }),
  },
  'over-the-air updates: signed releases, health confirmation, automatic rollback',
);
