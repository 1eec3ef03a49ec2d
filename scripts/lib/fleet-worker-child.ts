/**
 * One fleet worker in a process of its own (scripts/lib/fleet-workers.ts
 * forks it): Fleet.start with the configuration values given as JSON in
 * argv[2] (environment ignored), the alert engine with it unless
 * {"alerts": false}; answers 'metrics' and 'stop' over IPC.
 */
process.env.CALLBOX_LOG_LEVEL ??= 'error';
const { loadFleetConfig } = await import('../../fleet/config.js');
const { Fleet } = await import('../../fleet/fleet.js');
const { alertsFeature } = await import('../../fleet/alerts/feature.js');

const spec = JSON.parse(process.argv[2] ?? '{}') as { config: Record<string, unknown>; alerts?: boolean };
const config = loadFleetConfig(undefined, spec.config, {});
const fleet = await Fleet.start(config, {
  features: spec.alerts === false ? [] : [alertsFeature({ serveHttp: false })],
  onBootstrapAdmin: () => undefined,
});
process.on('message', (m: { t: string; id?: number }) => {
  if (m.t === 'metrics') {
    process.send?.({
      t: 'metrics',
      id: m.id,
      metrics: fleet.metrics(),
      rss: process.memoryUsage().rss,
      // The embedded broker's child process and listener (none in the other modes).
      brokerPid: fleet.broker?.pid,
      brokerPort: fleet.broker?.ports?.tcp ?? undefined,
    });
  } else if (m.t === 'stop') {
    void fleet.stop().finally(() => process.exit(0));
  }
});
process.on('disconnect', () => {
  void fleet.stop().finally(() => process.exit(0));
});
process.send?.({ t: 'ready' });
