import { describe, expect, it } from 'vitest';
import { aclFor } from '../../shared/contract/topics.js';
import { AUTH_AGENT_USER, agentPermissions, authKey } from './auth-agent.js';
import { mqttTopicToSubject, natsPermissionsFor, natsUserFor, renderAuthorization } from './nats-acl.js';

describe('NATS users and permissions from the contract', () => {
  it('converts topics as nats-server 2.9 does, refusing what it refuses', () => {
    expect(mqttTopicToSubject('callbox/v1/cb-1/events')).toBe('callbox.v1.cb-1.events');
    expect(() => mqttTopicToSubject('callbox/v1/_ops/a.b/req')).toThrow(/no NATS subject/);
    expect(() => mqttTopicToSubject('callbox//v1')).toThrow(/no NATS subject/);
  });

  it("gives a box exactly the contract's topics of its own id, plus QoS 1 delivery", () => {
    const p = natsPermissionsFor('cb-abc');
    const acl = aclFor({ kind: 'device', deviceId: 'cb-abc' });
    expect(p?.publish.allow).toEqual(acl.publish.map((t) => t.replaceAll('/', '.')));
    expect(p?.subscribe.allow).toEqual([...acl.subscribe.map((t) => t.replaceAll('/', '.')), '$MQTT.sub.>']);
    expect(p?.publish.allow).toContain('callbox.v1.cb-abc.events');
    expect(p?.subscribe.allow).toContain('callbox.v1.cb-abc.events.receipt');
    const all = [...(p?.publish.allow ?? []), ...(p?.subscribe.allow ?? [])];
    expect(all.filter((s) => s.startsWith('callbox.') && !s.startsWith('callbox.v1.cb-abc.'))).toEqual([]);
    expect(all.some((s) => s.includes('*') || (s.includes('>') && s !== '$MQTT.sub.>'))).toBe(false);
  });

  it('limits claim and ops identities to their own request and answer; the fleet is unrestricted', () => {
    expect(natsPermissionsFor('claim:SER-0001')).toEqual({
      publish: { allow: ['callbox.v1._claim.SER-0001.req'] },
      subscribe: { allow: ['callbox.v1._claim.SER-0001.res', '$MQTT.sub.>'] },
    });
    expect(natsPermissionsFor('ops:alice')?.publish.allow).toEqual(['callbox.v1._ops.alice.req']);
    expect(natsPermissionsFor('fleet:w1')).toBeNull();
    expect(natsPermissionsFor('not a user')).toBeUndefined();
    expect(natsUserFor('ops:a.b', '$2b$06$x')).toBeUndefined(); // "." cannot be an MQTT topic level in 2.9
    expect(() => natsUserFor('cb-abc', 'plain-secret')).toThrow(/bcrypt/);
  });

  it('writes an authorization block with every value quoted', () => {
    const text = renderAuthorization([
      { user: 'fleet:w1', password: '$2b$06$abc' },
      natsUserFor('cb-abc', '$2b$06$def') as never,
      { user: AUTH_AGENT_USER, password: '$2b$06$ghi', permissions: agentPermissions() },
    ]);
    expect(text).toContain('authorization {');
    expect(text).toContain('{"user":"fleet:w1","password":"$2b$06$abc"}');
    expect(text).toContain('"callbox.v1.cb-abc.events"');
    expect(authKey('claim:SER-0001')).toMatch(/^u_[A-Za-z0-9_-]+$/);
  });
});
