/**
 * The one rule for a box's claim secret (the factory secret on its label), the same in the box's configuration
 * (box.claimSecret) and in `fleet boxes register --secret` (boxes.register): a box can never hold a secret the
 * fleet would refuse to register, or the other way round.
 */
import { Type } from './schema.js';

export const CLAIM_SECRET_MIN = 8;
export const CLAIM_SECRET_MAX = 128;
export const CLAIM_SECRET_RULE = `${CLAIM_SECRET_MIN} to ${CLAIM_SECRET_MAX} characters`;

/** A claim secret, as on the label. */
export const ClaimSecret = (description = `the claim secret from the box's label (${CLAIM_SECRET_RULE})`) =>
  Type.String({ minLength: CLAIM_SECRET_MIN, maxLength: CLAIM_SECRET_MAX, description });
