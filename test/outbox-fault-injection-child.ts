/**
 * The box side of the fault-injection test, run as its own process so the
 * test can SIGKILL it: the real store, outbox and MQTT link against the
 * test's broker, producing call events as fast as the store commits them.
 *
 * argv: <dataDir> <brokerUrl> <deviceId> <runTag> <mode: produce|drain>
 * The ledger, <dataDir>/ledger.txt, is appended with blocking writes (a
 * line written is in the kernel before the next statement runs, so it
 * survives SIGKILL; a stdout pipe can queue writes when full and lose them):
 *   i <callId>                 about to record (intent)
 *   a <callId> <eventId> <seq> record() resolved: the event is acknowledged
 * stdout: "ready" (store open, link starting), "drained" (drain mode: every
 * stored event was receipted by the (test) fleet). Logs go to stderr.
 */
import { openSync, writeSync } from 'node:fs';
import { join } from 'node:path';
import { Store } from '../device/store/store.js';
import { Link } from '../device/uplink/link.js';
import { UPLINK_MIGRATIONS } from '../device/uplink/migrations.js';
import { Outbox } from '../device/uplink/outbox.js';
import { wireOutbox } from '../device/uplink/wire.js';
import { newBootId } from '../shared/ids.js';
import { setupLogging } from '../shared/log.js';

setupLogging({ level: 'warn', format: 'json', destination: process.stderr });

const [dataDir = '', url = '', deviceId = '', runTag = '', mode = 'produce'] = process.argv.slice(2);
const out = (line: string) => process.stdout.write(`${line}\n`);
const ledgerFd = openSync(join(dataDir, 'ledger.txt'), 'a');
const ledger = (line: string) => writeSync(ledgerFd, `${line}\n`);

const bootId = newBootId();
const store = await Store.open({ file: join(dataDir, 'box.db'), migrations: { uplink: UPLINK_MIGRATIONS } });
const outbox = new Outbox(store, { bootId, maxEvents: 1_000_000, publishBatch: 50, minFreeBytes: 1, dataDir });
await outbox.open();
const link = new Link({
  url,
  identity: { kind: 'device', id: deviceId, username: deviceId, password: 'fault-injection-pw' },
  keepaliveS: 10,
  connectTimeoutMs: 2000,
  reconnectMinMs: 50,
  reconnectMaxMs: 500,
  bootId,
  softwareVersion: 'fault-test',
});
wireOutbox(link, outbox, deviceId);
link.start();
out('ready');

if (mode === 'drain') {
  await outbox.drained();
  out('drained');
  await link.stop();
  await outbox.close();
  await store.close();
  process.exit(0);
}

let n = 0;
for (;;) {
  // Several producers at once, as calls, modem and io do: exercises the group commit.
  await Promise.all(
    Array.from({ length: 8 }, async () => {
      const callId = `${runTag}-${n++}`;
      ledger(`i ${callId}`);
      const r = await outbox.record('call.incoming', {
        callId,
        number: null,
        withheld: true,
        inHours: true,
        repeatCaller: false,
        waiting: false,
      });
      ledger(`a ${callId} ${r.id} ${r.seq}`);
    }),
  );
  // A steady flow rather than a flat-out one: the kills, not CPU starvation, are what is tested.
  await new Promise((r) => setTimeout(r, 5));
}
