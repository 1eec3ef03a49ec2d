/**
 * Identifiers. Event and request ids are UUIDv7 (RFC 9562): unique, and
 * their text sorts by creation time, so the fleet's event table is ordered
 * by id for free. Device ids are chosen by the fleet at provisioning.
 */
import { randomUUID } from 'node:crypto';
import { v7 as uuidv7 } from 'uuid';

/** Lower-case letters, digits and dashes, 3 to 64 characters, starting with a letter or digit. */
export const DEVICE_ID_PATTERN = '^[a-z0-9][a-z0-9-]{2,63}$';
/** A box's factory serial number as printed on its label. */
export const SERIAL_PATTERN = '^[A-Z0-9][A-Z0-9-]{3,31}$';
/** E.164: a plus, then 7 to 15 digits, the first not zero. */
export const E164_PATTERN = '^\\+[1-9]\\d{6,14}$';
export const UUID_PATTERN = '^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$';

const serialRe = new RegExp(SERIAL_PATTERN);

export function isSerial(s: string): boolean {
  return serialRe.test(s);
}

/** A new time-sortable id for an event. */
export function newEventId(): string {
  return uuidv7();
}

/** A new time-sortable id for a request. */
export function newRequestId(): string {
  return uuidv7();
}

/** A random id for this run of the program (changes at every start). */
export function newBootId(): string {
  return randomUUID();
}
