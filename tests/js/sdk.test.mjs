// The newest official Appwrite Web SDK against the emulator's 1.9 profile: message
// subscriptions, in-band authentication, routing by data.subscriptions.
import { WebSocket } from 'ws';
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { Emulator, until } from './emulator.mjs';

// Node 20 has no global WebSocket, and the SDK schedules its timers through `window`.
globalThis.WebSocket = WebSocket;
globalThis.window = globalThis;

const { Client, Account, Realtime } = await import('appwrite');

let emu;
let alice;
before(async () => {
  emu = await Emulator.start(['--profile', '1.9']);
  alice = await emu.createUser({ id: 'alice', email: 'alice@example.com', password: 'pw-alice', name: 'Alice' });
});
after(async () => {
  const { code } = await emu.stop();
  assert.equal(code, 0);
});

test('newest SDK: setSession, subscribe to a row channel, receive a published row', async () => {
  const sdk = await import('appwrite/package.json', { with: { type: 'json' } }).catch(() => null);
  if (sdk) assert.ok(Number(sdk.default.version.split('.')[0]) >= 25, 'expects a message-subscription SDK');
  const client = new Client().setEndpoint(`${emu.http}/v1`).setProject('test').setSession(alice.session);

  const me = await new Account(client).get();
  assert.equal(me.$id, 'alice');
  assert.equal(me.name, 'Alice');

  const realtime = new Realtime(client);
  try {
    await receiveRow(realtime);
  } finally {
    await realtime.disconnect();
  }
  await emu.waitConnections(0);
});

async function receiveRow(realtime) {
  const received = [];
  const channel = 'tablesdb.shop.tables.orders.rows';
  const subscription = await realtime.subscribe(channel, (event) => received.push(event));

  // The SDK authenticates in-band and subscribes once `connected` arrives.
  await until(async () => {
    const conns = await emu.connections();
    return conns.some((c) => c.user === 'alice' && c.subscriptions.some((s) => s.channels.includes(channel)));
  }, 'the SDK to authenticate and subscribe');

  const payload = {
    $id: 'o1', $tableId: 'orders', $databaseId: 'shop', $createdAt: '2026-08-21T12:00:00.000+00:00',
    $updatedAt: '2026-08-21T12:00:00.000+00:00', status: 'paid', total: 120,
  };
  const answer = await emu.publish({ payload, read: ['user:alice'] });
  assert.equal(answer.delivered, 1);
  await until(() => received.length === 1, 'the subscription callback');
  assert.deepEqual({ ...received[0].payload }, payload);
  assert.ok(received[0].events.includes('tablesdb.shop.tables.orders.rows.o1.update'));
  assert.ok(received[0].channels.includes(channel));

  await subscription.close();
}
