import { describe, expect, it } from 'vitest';
import { FLEET_SUBSCRIPTIONS } from '../../shared/contract/topics.js';
import { subjectOfFilter, topicOfSubject } from './request-queue.js';

describe("the MQTT gateway's subjects", () => {
  it('maps the request filters to NATS subjects with wildcards', () => {
    expect(subjectOfFilter(FLEET_SUBSCRIPTIONS.opsReq)).toBe('callbox.v1._ops.*.req');
    expect(subjectOfFilter(FLEET_SUBSCRIPTIONS.claimReq)).toBe('callbox.v1._claim.*.req');
    expect(subjectOfFilter(FLEET_SUBSCRIPTIONS.fleetReq)).toBe('callbox.v1.*.fleet.req');
    expect(subjectOfFilter('a/#')).toBe('a.>');
  });

  it('gives back the topic a client published; a level with a dot has no subject', () => {
    expect(topicOfSubject('callbox.v1._ops.ann.req')).toBe('callbox/v1/_ops/ann/req');
    expect(() => subjectOfFilter('callbox/v1/_ops/ann.smith/req')).toThrow(/no NATS subject/);
  });
});
