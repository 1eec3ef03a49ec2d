/**
 * Cluster mode on a real three-node NATS engine (scripts/cluster, one
 * cluster for the file): the fleet in cluster mode, the embedded broker's
 * ACL matrix refused by the engine (users and permissions generated from
 * the contract table), boxes provisioned and revoked while the engine keeps
 * running (same pids), and a box that moves to another node when its node
 * is SIGKILLed, its outbox draining with nothing lost.
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import mqtt, { type IClientOptions, type MqttClient } from 'mqtt';
import { connect as natsConnect } from 'nats';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { Store } from '../device/store/store.js';
import { Link } from '../device/uplink/link.js';
import { UPLINK_MIGRATIONS } from '../device/uplink/migrations.js';
import { Outbox } from '../device/uplink/outbox.js';
import { wireOutbox } from '../device/uplink/wire.js';
import { NatsAuthSink } from '../fleet/cluster/auth-sink.js';
import { FLEET_QUEUE, subjectOfFilter } from '../fleet/cluster/request-queue.js';
import { type RunningCluster, startCluster } from '../scripts/cluster/cluster.js';
import { claimTopics, deviceTopics, FLEET_SUBSCRIPTIONS, opsTopics } from '../shared/contract/topics.js';
import { newBootId } from '../shared/ids.js';
import { waitFor } from '../shared/wait.js';
import { closed, connectClient, granted, startTestFleet, type TestFleet } from './helpers/fleet.js';
import { sampleEvent } from './helpers/store-conformance.js';
import { opsUser } from './security/helpers.js';

type Login = { deviceId: string; username: string; password: string };

/**
 * One MQTT login: accepted, refused (CONNACK "not authorized"), or closed
 * without an answer (a node whose JetStream did not answer in time).
 */
/** Log in, again when a loaded node closed the connection without an answer (a box would reconnect too). */
async function connectTo(url: string, opts: IClientOptions): Promise<MqttClient> {
  for (let attempt = 1; ; attempt++) {
    try {
      return await new Promise<MqttClient>((resolve, reject) => {
        const c = mqtt.connect(url, { reconnectPeriod: 0, connectTimeout: 10_000, ...opts });
        c.once('connect', () => resolve(c));
        c.once('error', (e) => {
          c.end(true);
          reject(e);
        });
        c.once('close', () => reject(new Error('closed before CONNACK')));
      });
    } catch (e) {
      if (attempt >= 5 || !/closed before CONNACK/.test((e as Error).message)) throw e;
    }
  }
}

function login(url: string, who: { username: string; password: string }): Promise<'accepted' | 'refused' | 'closed'> {
  const c = mqtt.connect(url, { ...who, reconnectPeriod: 0, connectTimeout: 10_000 });
  return new Promise((resolve) => {
    c.once('connect', () => resolve('accepted'));
    c.once('error', (e) => resolve(/Not authorized|Bad username/i.test(e.message) ? 'refused' : 'closed'));
    c.once('close', () => resolve('closed'));
  }).finally(() => c.end(true)) as Promise<'accepted' | 'refused' | 'closed'>;
}

describe('cluster mode: a three-node NATS engine', () => {
  let dir: string;
  let cluster: RunningCluster;
  let tf: TestFleet;
  let a: Login;
  let b: Login;
  let pids: (number | undefined)[];

  beforeAll(async () => {
    dir = mkdtempSync(join(tmpdir(), 'callbox-cluster-'));
    cluster = await startCluster({ dir, nodes: 3 });
    pids = cluster.nodes.map((n) => n.pid);
    const fleetUser = cluster.fleetUsers[0];
    tf = await startTestFleet({
      mqtt: {
        mode: 'cluster',
        clusterMqttUrls: cluster.mqttUrls,
        clusterNatsUrls: cluster.clientUrls,
        externalUsername: fleetUser?.username,
        externalPasswordFile: fleetUser?.secretFile,
      },
    });
    // Factory provisioning (no claim round trip): the credentials still go through the engine's auth agent.
    const provision = async (serial: string): Promise<Login> => {
      const p = await tf.fleet.registry.provision('test', serial);
      return { deviceId: p.deviceId, username: p.deviceId, password: p.password };
    };
    a = await provision('CLU-A001');
    b = await provision('CLU-B001');
  }, 60_000);
  afterAll(async () => {
    await tf?.close();
    await cluster?.stop();
    if (!process.env.CALLBOX_KEEP_CLUSTER) rmSync(dir, { recursive: true, force: true });
  });

  it('formed: three nodes routed to each other, JetStream with a leader, MQTT replicated three times', async () => {
    expect(cluster.nodes.every((n) => n.running())).toBe(true);
    for (const n of cluster.nodes) {
      const routez = (await (await fetch(`${n.monitorUrl}/routez`)).json()) as { num_routes: number };
      expect(routez.num_routes).toBe(2);
      const jsz = (await (await fetch(`${n.monitorUrl}/jsz`)).json()) as { meta_cluster: { leader: string } };
      expect(jsz.meta_cluster.leader).toMatch(/^n[123]$/);
    }
    const c = await connectTo(cluster.mqttUrls[2] as string, { username: a.username, password: a.password });
    await c.publishAsync(deviceTopics(a.deviceId).events, JSON.stringify(sampleEvent(a.deviceId, 1)), { qos: 1 });
    await waitFor(async () => (await tf.fleet.store.countEvents({ deviceId: a.deviceId })) === 1, 'the event stored');
    c.end(true);
    const streams = (await (
      await fetch(`${cluster.nodes[0]?.monitorUrl}/jsz?accounts=true&streams=true&config=true`)
    ).json()) as {
      account_details?: { stream_detail?: { name: string; config?: { num_replicas: number } }[] }[];
    };
    const msgs = streams.account_details?.flatMap((d) => d.stream_detail ?? []).find((s) => s.name === '$MQTT_msgs');
    expect(msgs?.config?.num_replicas).toBe(3);
  }, 60_000);

  it('refuses every cross-identity subscribe (box, viewer, claim)', async () => {
    const tb = deviceTopics(b.deviceId);
    const filters = [
      tb.configDesired,
      tb.cmdReq,
      tb.fleetRes,
      tb.voicemailAck,
      tb.events,
      `${tb.root}/#`,
      '#',
      '$SYS/#',
      '$MQTT/sub/#',
      'callbox/v1/+/events',
      'callbox/v1/+/config/desired',
      claimTopics('CLU-B001').res,
      opsTopics('admin').res,
    ];
    const url = cluster.mqttUrls[1] as string;
    const asBox = await connectTo(url, { username: a.username, password: a.password });
    expect(await granted(asBox, filters)).toEqual(filters.map(() => 128));
    expect(await granted(asBox, [deviceTopics(a.deviceId).cmdReq])).toEqual([1]);
    asBox.end(true);
    const viewer = await opsUser(tf, 'cluviewer', 'viewer');
    const asViewer = await connectTo(url, viewer);
    expect(await granted(asViewer, [...filters, deviceTopics(a.deviceId).events])).toEqual(
      [...filters, 'x'].map(() => 128),
    );
    asViewer.end(true);
    const secret = 'label-CLU-C001-secret';
    await tf.admin.call('boxes.register', { serial: 'CLU-C001', claimSecret: secret });
    const asClaim = await connectTo(url, { username: 'claim:CLU-C001', password: secret });
    expect(
      await granted(asClaim, [claimTopics('CLU-C001').res, claimTopics('CLU-A001').res, '#', tb.configDesired]),
    ).toEqual([1, 128, 128, 128]);
    asClaim.end(true);
  });

  it("refuses a box's or a viewer's NATS login joining the fleet's request queue", async () => {
    const viewer = await opsUser(tf, 'cluviewer3', 'viewer');
    for (const who of [
      { user: a.username, pass: a.password },
      { user: viewer.username, pass: viewer.password },
    ]) {
      const nc = await natsConnect({ servers: cluster.clientUrls, ...who });
      try {
        const refused: string[] = [];
        for (const filter of [FLEET_SUBSCRIPTIONS.opsReq, FLEET_SUBSCRIPTIONS.claimReq, FLEET_SUBSCRIPTIONS.fleetReq]) {
          nc.subscribe(subjectOfFilter(filter), {
            queue: FLEET_QUEUE,
            callback: (err) => {
              if (err?.code === 'PERMISSIONS_VIOLATION') refused.push(filter);
            },
          });
        }
        await waitFor(() => refused.length === 3, `${who.user} refused the three request subjects`, 10_000);
      } finally {
        await nc.close();
      }
    }
    // The fleet still takes every request.
    expect(await tf.admin.call('fleet.hello', {})).toBeDefined();
  });

  it('delivers no cross-identity publish and stores nothing from it', async () => {
    const tb = deviceTopics(b.deviceId);
    const url = cluster.mqttUrls[0] as string;
    // A listener with every right (the fleet's identity) sees what gets through.
    const viewer = await opsUser(tf, 'cluviewer2', 'viewer');
    const fleetUser = cluster.fleetUsers[0] as { username: string; password: string };
    const spy = await connectTo(url, { ...fleetUser, clientId: 'spy', clean: true });
    const seen: string[] = [];
    spy.on('message', (t) => seen.push(t));
    await spy.subscribeAsync(['callbox/v1/#'], { qos: 0 });
    const attempts = [
      { who: a, topic: tb.events, payload: JSON.stringify(sampleEvent(b.deviceId, 1)) },
      { who: a, topic: tb.status, payload: '{"v":1,"state":"offline"}' },
      { who: a, topic: tb.configDesired, payload: '{}' },
      { who: a, topic: deviceTopics(a.deviceId).cmdReq, payload: '{}' },
      { who: a, topic: opsTopics('admin').req, payload: '{}' },
      { who: viewer, topic: tb.events, payload: JSON.stringify(sampleEvent(b.deviceId, 2)) },
      { who: viewer, topic: tb.cmdReq, payload: '{}' },
      { who: viewer, topic: opsTopics('admin').req, payload: '{}' },
    ];
    for (const at of attempts) {
      const c = await connectTo(url, at.who);
      // nats-server acknowledges (MQTT 3.1.1 has no refusal for a PUBLISH) and drops it: a "Publish Violation".
      await c.publishAsync(at.topic, at.payload, { qos: 1 }).catch(() => undefined);
      c.end(true);
    }
    // A permitted publish after them: once it has arrived, the refused ones would have too.
    const own = await connectTo(url, { username: a.username, password: a.password });
    await own.publishAsync(deviceTopics(a.deviceId).telemetry, '', { qos: 1 });
    await waitFor(() => seen.includes(deviceTopics(a.deviceId).telemetry), 'the permitted publish');
    own.end(true);
    spy.end(true);
    expect(seen.filter((t) => attempts.some((at) => at.topic === t))).toEqual([]);
    await tf.fleet.ingest.drain();
    expect(await tf.fleet.store.countEvents({ deviceId: b.deviceId })).toBe(0);
  });

  it('refuses wrong, empty and missing passwords, and unknown users', async () => {
    const url = cluster.mqttUrls[2] as string;
    const tries = [
      { username: a.username, password: 'wrong-password-123' },
      { username: a.username, password: '' },
      { username: a.username },
      { username: 'cb-nobody', password: 'x'.repeat(20) },
      { username: 'ops:admin', password: a.password },
      { username: 'fleet:core', password: a.password },
      { username: 'not a username', password: 'x'.repeat(20) },
    ];
    for (const t of tries) {
      await expect(connectClient(url, t), t.username).rejects.toThrow(/Bad username or password|Not authorized/i);
    }
  });

  it("holds a user for every active credential the registry issued (a fleet's start-up reconcile finds none missing)", async () => {
    const f = cluster.fleetUsers[0] as { username: string; password: string };
    const sink = await NatsAuthSink.open({ servers: cluster.clientUrls, user: f.username, password: f.password });
    try {
      const active = (await tf.fleet.store.listActiveCredentials()).map((c) => c.username);
      expect(active).toEqual(expect.arrayContaining([a.username, b.username]));
      expect((await sink.usernames()).sort()).toEqual([...active].sort());
      expect(await sink.reconcile(active)).toEqual({ removed: 0, missing: [] });
    } finally {
      await sink.close();
    }
  });

  it('provisions and revokes boxes while the engine runs: no node restarted', async () => {
    const p = await tf.fleet.registry.provision('test', 'CLU-D001');
    const c = { deviceId: p.deviceId, username: p.deviceId, password: p.password };
    const box = await connectTo(cluster.mqttUrls[1] as string, { username: c.username, password: c.password });
    expect(await granted(box, [deviceTopics(c.deviceId).cmdReq])).toEqual([1]);
    await tf.admin.call('boxes.decommission', { box: 'CLU-D001', reason: 'stolen' });
    expect(await closed(box, 10_000)).toBe(true);
    // Each node drops the user once its agent-written file is reloaded (the box's node already has: it was cut off).
    for (const url of cluster.mqttUrls) {
      await waitFor(async () => (await login(url, c)) === 'refused', `${url} refusing the revoked box`, 15_000);
    }
    expect(cluster.nodes.map((n) => n.pid)).toEqual(pids);
    expect(cluster.agent?.reloads()).toBeGreaterThan(1);
  }, 60_000);

  it('a box moves to another node within 10 s when its node is SIGKILLed; its outbox drains, nothing lost', async () => {
    const store = await Store.open({ file: join(dir, 'box.db'), migrations: { uplink: UPLINK_MIGRATIONS } });
    const outbox = new Outbox(store, {
      bootId: newBootId(),
      maxEvents: 10_000,
      publishBatch: 20,
      minFreeBytes: 1,
      freeBytes: async () => 10 ** 12,
      receiptTimeoutMs: 2000,
    });
    await outbox.open();
    // The box starts on node 2; the fleet is on node 1.
    const urls = [cluster.mqttUrls[1], cluster.mqttUrls[2], cluster.mqttUrls[0]] as string[];
    const link = new Link({
      url: urls[0] as string,
      urls,
      identity: { kind: 'device', id: b.deviceId, username: b.username, password: b.password },
      keepaliveS: 5,
      connectTimeoutMs: 2000,
      reconnectMinMs: 200,
      reconnectMaxMs: 1000,
      bootId: newBootId(),
      softwareVersion: 'test',
    });
    const unwire = wireOutbox(link, outbox, b.deviceId);
    link.start();
    try {
      await waitFor(() => link.online, 'the box online');
      const first = link.currentUrl;
      expect(first).toBe(urls[0]);
      const call = (n: number) => ({
        callId: `c${n}`,
        number: null,
        withheld: true,
        inHours: true,
        repeatCaller: false,
        waiting: false,
      });
      let n = 0;
      for (; n < 50; n++) await outbox.record('call.incoming', call(n));
      const node = cluster.nodes.find((x) => x.mqttUrl === first);
      await node?.kill('SIGKILL');
      const killedAt = Date.now();
      // Events keep coming while the box is cut off.
      for (; n < 100; n++) await outbox.record('call.incoming', call(n));
      await waitFor(() => link.online && link.currentUrl !== first, 'the box on another node', 10_000);
      const movedMs = Date.now() - killedAt;
      expect(movedMs).toBeLessThan(10_000);
      for (; n < 150; n++) await outbox.record('call.incoming', call(n));
      let stored = 0;
      await waitFor(
        async () => {
          stored = await tf.fleet.store.countEvents({ deviceId: b.deviceId });
          return stored === 150;
        },
        'all 150 events stored',
        30_000,
      ).catch((e) => {
        throw new Error(`${(e as Error).message}: ${stored} stored, outbox depth ${outbox.depth}`);
      });
      await waitFor(() => outbox.depth === 0, 'the outbox drained (every event receipted)', 20_000);
      process.stdout.write(`cluster failover: box moved from ${first} to ${link.currentUrl} in ${movedMs} ms\n`);
      await node?.restart();
    } finally {
      unwire();
      await link.stop();
      await outbox.close();
      await store.close();
    }
  }, 60_000);
});
