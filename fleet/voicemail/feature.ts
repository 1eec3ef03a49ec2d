/**
 * The voicemail receiver as a fleet feature: boxes upload recordings in
 * chunks on callbox/v1/<id>/voicemail/chunk; the fleet stores each one under
 * voicemail.dir/<deviceId>/<voicemailId>.wav (mode 0600, encrypted with the
 * fleet's patient-data key: read it with receiver.read) once its checksum
 * verified, and only then confirms it to the box.
 */
import { CallboxError, ErrorCode } from '../../shared/errors.js';
import { getLogger } from '../../shared/log.js';
import type { Fleet, FleetFeature } from '../fleet.js';
import { type StoredVoicemail, VoicemailReceiver } from './receiver.js';

const log = getLogger('fleet:voicemail');

export function voicemailFeature(onStored?: (v: StoredVoicemail) => void | Promise<void>) {
  return (fleet: Fleet): FleetFeature & { receiver: VoicemailReceiver | undefined } => {
    let receiver: VoicemailReceiver | undefined;
    return {
      name: 'voicemail',
      get receiver() {
        return receiver;
      },
      async start() {
        const client = fleet.client;
        if (!client) throw new CallboxError(ErrorCode.Internal, 'voicemail feature started before the fleet connected');
        receiver = new VoicemailReceiver(
          client,
          fleet.config.voicemail.dir,
          async (v) => {
            log.info({ deviceId: v.deviceId, voicemailId: v.voicemailId, bytes: v.bytes }, 'voicemail received');
            await onStored?.(v);
          },
          fleet.patient,
        );
        await receiver.start();
      },
      stop() {
        receiver?.stop();
      },
    };
  };
}
