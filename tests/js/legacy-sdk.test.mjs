// A legacy official Appwrite Web SDK (18.x, channels in the URL) against the emulator's 1.8
// profile: an email session from REST, its token handed to realtime through the fallback
// cookie, channel-matched routing.
import { WebSocket } from 'ws';
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { Emulator, until } from './emulator.mjs';

// Node 20 has no global WebSocket; the SDK keeps its session in window.localStorage.
const storage = new Map();
globalThis.WebSocket = WebSocket;
globalThis.window = globalThis;
globalThis.localStorage = {
  getItem: (key) => (storage.has(key) ? storage.get(key) : null),
  setItem: (key, value) => storage.set(key, String(value)),
  removeItem: (key) => storage.delete(key),
};
globalThis.console.warn = () => {};

const { Client, Account } = await import('appwrite-legacy');

let emu;
before(async () => {
  emu = await Emulator.start(['--profile', '1.8']);
  await emu.createUser({ id: 'bob', email: 'bob@example.com', password: 'pw-bob' });
});
after(async () => {
  const { code } = await emu.stop();
  assert.equal(code, 0);
});

test('legacy SDK: URL channels, authentication message, event callback', async () => {
  const client = new Client().setEndpoint(`${emu.http}/v1`).setProject('test');
  const session = await new Account(client).createEmailPasswordSession('bob@example.com', 'pw-bob');
  assert.equal(session.userId, 'bob');
  assert.ok(storage.get('cookieFallback'), 'the SDK stored the fallback cookie');

  const channel = 'databases.shop.tables.orders.rows';
  const received = [];
  const unsubscribe = client.subscribe(channel, (event) => received.push(event));
  try {
    await receiveRow(channel, received);
  } finally {
    unsubscribe();
    client.realtime.reconnect = false;
    client.realtime.socket?.close();
    // The legacy SDK never stops its 20 s heartbeat timer; it would keep node alive.
    clearInterval(client.realtime.heartbeat);
    clearTimeout(client.realtime.timeout);
  }
  await emu.waitConnections(0);
});

async function receiveRow(channel, received) {
  await until(async () => {
    const conns = await emu.connections();
    return conns.some((c) => c.user === 'bob' && c.channels.includes(channel));
  }, 'the SDK to connect with URL channels and authenticate');
  const [conn] = await emu.connections();
  assert.deepEqual(conn.subscriptions, []);

  const payload = {
    $id: 'o1', $createdAt: '2026-08-21T12:00:00.000+00:00', $updatedAt: '2026-08-21T12:00:00.000+00:00', status: 'paid',
  };
  const answer = await emu.publish({ payload, read: ['user:bob'] });
  assert.equal(answer.delivered, 1);
  assert.equal(answer.channels.length, 6);
  await until(() => received.length === 1, 'the subscription callback');
  assert.deepEqual(received[0].payload, payload);
  assert.equal(received[0].subscriptions, undefined);
}
