import { describe, expect, it } from 'vitest';
import {
  aclFor,
  claimTopics,
  deviceTopics,
  type Identity,
  identityOfUsername,
  mayPublish,
  maySubscribe,
  opsTopics,
  parseTopic,
  replyTopicOf,
  TOPICS,
  topicMatches,
  usernameFor,
} from './topics.js';

const A: Identity = { kind: 'device', deviceId: 'cb-aaaa' };
const claim: Identity = { kind: 'claim', serial: 'CB24-000123' };
const ops: Identity = { kind: 'ops', user: 'alice' };
const fleet: Identity = { kind: 'fleet' };

describe('topic tree', () => {
  it('every device topic parses back to its key and device', () => {
    const t = deviceTopics('cb-aaaa');
    for (const spec of TOPICS.filter((s) => s.pattern.includes('{deviceId}'))) {
      const topic = t[spec.key as keyof typeof t];
      expect(parseTopic(topic)).toEqual({ key: spec.key, deviceId: 'cb-aaaa' });
    }
    expect(parseTopic(claimTopics('CB24-000123').req)).toEqual({ key: 'claimReq', serial: 'CB24-000123' });
    expect(parseTopic(opsTopics('alice').res)).toEqual({ key: 'opsRes', user: 'alice' });
  });

  it('rejects topics outside the contract', () => {
    for (const t of [
      'callbox/v2/cb-aaaa/events',
      'callbox/v1/cb-aaaa/evil',
      'callbox/v1/CB-AAAA/events',
      'x',
      'callbox/v1/_claim/bad serial/req',
    ]) {
      expect(parseTopic(t)).toBeUndefined();
    }
  });

  it('refuses to build topics for malformed ids', () => {
    expect(() => deviceTopics('Box A')).toThrow(/device id "Box A"/);
    expect(() => deviceTopics('_ops')).toThrow();
    expect(() => claimTopics('lower')).toThrow(/serial/);
  });

  it('every retained topic is QoS 1 and status/config/update offer and progress are retained', () => {
    const retained = TOPICS.filter((t) => t.retained).map((t) => t.key);
    expect(retained.sort()).toEqual(['configDesired', 'configReported', 'status', 'updateOffer', 'updateProgress']);
    expect(TOPICS.filter((t) => t.retained).every((t) => t.qos === 1)).toBe(true);
  });

  it('pairs each request topic with its reply topic', () => {
    expect(replyTopicOf('callbox/v1/cb-aaaa/cmd/req')).toBe('callbox/v1/cb-aaaa/cmd/res');
    expect(() => replyTopicOf('callbox/v1/cb-aaaa/events')).toThrow();
  });

  it('matches filters the MQTT way', () => {
    expect(topicMatches('callbox/v1/+/events', 'callbox/v1/cb-1/events')).toBe(true);
    expect(topicMatches('callbox/v1/+/events', 'callbox/v1/cb-1/status')).toBe(false);
    expect(topicMatches('callbox/#', 'callbox/v1/cb-1/events')).toBe(true);
    expect(topicMatches('#', '$SYS/broker/uptime')).toBe(false);
    expect(topicMatches('$share/g/callbox/v1/+/events', 'callbox/v1/cb-1/events')).toBe(true);
  });
});

describe('ACL from the table', () => {
  const a = deviceTopics('cb-aaaa');
  const b = deviceTopics('cb-bbbb');

  it('a box publishes only its own box->fleet topics', () => {
    expect(mayPublish(A, a.events)).toBe(true);
    expect(mayPublish(A, a.status)).toBe(true);
    expect(mayPublish(A, b.events)).toBe(false);
    expect(mayPublish(A, a.configDesired)).toBe(false);
    expect(mayPublish(A, a.cmdReq)).toBe(false);
    expect(mayPublish(A, '$SYS/x')).toBe(false);
    expect(mayPublish(A, claimTopics('CB24-000123').req)).toBe(false);
  });

  it('a box subscribes only to its own fleet->box topics, never wildcards or $SYS', () => {
    expect(maySubscribe(A, a.configDesired)).toBe(true);
    expect(maySubscribe(A, a.cmdReq)).toBe(true);
    expect(maySubscribe(A, b.cmdReq)).toBe(false);
    expect(maySubscribe(A, a.events)).toBe(false);
    // Receipts: the box hears its own, cannot forge one, nor hear another box's.
    expect(a.receipt).toBe('callbox/v1/cb-aaaa/events/receipt');
    expect(maySubscribe(A, a.receipt)).toBe(true);
    expect(mayPublish(A, a.receipt)).toBe(false);
    expect(maySubscribe(A, b.receipt)).toBe(false);
    expect(aclFor(A).subscribe).toContain(a.receipt);
    for (const f of ['#', 'callbox/v1/+/cmd/req', 'callbox/v1/cb-aaaa/#', '$SYS/#'])
      expect(maySubscribe(A, f)).toBe(false);
  });

  it('the claim identity can only ask to be provisioned and hear the answer', () => {
    const c = claimTopics('CB24-000123');
    expect(mayPublish(claim, c.req)).toBe(true);
    expect(maySubscribe(claim, c.res)).toBe(true);
    expect(mayPublish(claim, claimTopics('CB24-000999').req)).toBe(false);
    expect(mayPublish(claim, a.events)).toBe(false);
    expect(maySubscribe(claim, a.cmdReq)).toBe(false);
  });

  it('ops users only use their own ops topics; the fleet anything but $SYS', () => {
    expect(mayPublish(ops, opsTopics('alice').req)).toBe(true);
    expect(mayPublish(ops, opsTopics('bob').req)).toBe(false);
    expect(mayPublish(ops, a.cmdReq)).toBe(false);
    expect(mayPublish(fleet, a.cmdReq)).toBe(true);
    expect(maySubscribe(fleet, 'callbox/v1/+/events')).toBe(true);
    expect(maySubscribe(fleet, '$SYS/#')).toBe(false);
  });

  it('aclFor lists exactly the concrete topics the predicates allow', () => {
    const acl = aclFor(A);
    expect(acl.publish.every((t) => mayPublish(A, t))).toBe(true);
    expect(acl.subscribe.every((t) => maySubscribe(A, t))).toBe(true);
    expect(acl.publish).toContain(a.events);
    expect(acl.subscribe).toContain(a.configDesired);
    expect(aclFor(claim)).toEqual({
      publish: [claimTopics('CB24-000123').req],
      subscribe: [claimTopics('CB24-000123').res],
    });
  });

  it('usernames round-trip to identities', () => {
    for (const id of [A, claim, ops]) expect(identityOfUsername(usernameFor(id))).toEqual(id);
    expect(identityOfUsername('Robert; DROP TABLE')).toBeUndefined();
    expect(identityOfUsername('claim:lowercase')).toBeUndefined();
  });
});
