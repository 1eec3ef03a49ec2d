import { describe, expect, it } from 'vitest';
import { linkOf } from './io.js';
import { modemHealth } from './modem.js';

describe('modemHealth: what the fleet hears about the line', () => {
  it('reports no event for the driver’s transient states', () => {
    for (const s of ['closed', 'opening', 'initializing'] as const) {
      expect(modemHealth(s, { registration: 'home' })).toBeNull();
    }
  });
  it('reports modem problems as they are, whatever the registration', () => {
    for (const s of ['disconnected', 'sim_missing', 'sim_pin', 'resetting'] as const) {
      expect(modemHealth(s, { registration: 'home' })).toBe(s);
    }
  });
  it('reduces the registration of a ready modem', () => {
    expect(modemHealth('ready', { registration: 'home' })).toBe('ready');
    expect(modemHealth('ready', { registration: 'roaming' })).toBe('ready');
    expect(modemHealth('ready', { registration: 'unknown' })).toBe('ready');
    expect(modemHealth('ready', { registration: 'denied' })).toBe('registration_denied');
    expect(modemHealth('ready', { registration: 'searching' })).toBe('not_registered');
    expect(modemHealth('ready', { registration: 'not_registered' })).toBe('not_registered');
    expect(modemHealth('ready', { registration: 'emergency_only' })).toBe('no_signal');
  });
});

describe('linkOf: the uplink state on the status LED', () => {
  it('maps every uplink state', () => {
    expect(linkOf('online')).toEqual({ link: 'online', provisioning: false });
    expect(linkOf('connecting')).toEqual({ link: 'connecting', provisioning: false });
    expect(linkOf('starting')).toEqual({ link: 'connecting', provisioning: false });
    expect(linkOf('unprovisioned')).toEqual({ link: 'offline', provisioning: true });
    expect(linkOf('revoked')).toEqual({ link: 'offline', provisioning: true });
    expect(linkOf('offline')).toEqual({ link: 'offline', provisioning: false });
    expect(linkOf('stopped')).toEqual({ link: 'offline', provisioning: false });
  });
});
