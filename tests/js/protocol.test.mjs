// Raw WebSocket tests of appwrite-emulator's realtime protocol (the README's "Trying routes by
// hand with the emulator" describes the emulator).
import { test, before, after, describe } from 'node:test';
import assert from 'node:assert/strict';
import { Emulator, Client, ROW_EVENT, ROW_PARAMS } from './emulator.mjs';

const ROWS = 'tablesdb.shop.tables.orders.rows';
const TS = /^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}\.\d{3}\+00:00$/;

async function open(emu, query = '', options) {
  const client = Client.connect(`${emu.ws}?project=test${query}`, options);
  const connected = await client.nextType('connected');
  return { client, connected };
}

async function expectErrorThenClose(client, code, message) {
  const frame = await client.next(() => true, 'the first frame');
  assert.equal(frame.json.type, 'error');
  assert.equal(frame.json.data.code, code);
  if (message !== undefined) assert.equal(frame.json.data.message, message);
  const closed = await client.waitClosed();
  // A TCP close without a close frame: the client reports an abnormal closure.
  assert.equal(closed.code, 1006);
  return frame;
}

async function subscribe(client, rows) {
  client.send({ type: 'subscribe', data: rows });
  return (await client.next((m) => m.type === 'response' && m.data.to === 'subscribe', 'subscribe response')).json;
}

describe('profile 1.9, production errors', () => {
  let emu;
  let alice;
  let bob;
  let carol;
  before(async () => {
    emu = await Emulator.start(['--profile', '1.9', '--api-key', 'secret-key']);
    alice = await emu.createUser({ id: 'alice', email: 'alice@example.com', password: 'pw-alice', teams: ['t1'] });
    bob = await emu.createUser({ id: 'bob', email: 'bob@example.com', password: 'pw-bob' });
    carol = await emu.createUser({ id: 'carol', email: 'carol@example.com', password: 'pw-carol', teams: ['t1'] });
  });
  after(async () => {
    const { code } = await emu.stop();
    assert.equal(code, 0);
  });

  test('connected frame without channels (message mode) is exact', async () => {
    const { client, connected } = await open(emu);
    assert.equal(connected.text, '{"type":"connected","data":{"channels":[],"subscriptions":[],"user":null}}');
    client.close();
  });

  test('connected frame with URL channels lists one server-minted subscription', async () => {
    const { client, connected } = await open(emu, `&channels[]=${ROWS}&channels[]=account`, {
      headers: { 'X-Appwrite-Session': alice.session },
    });
    const data = connected.json.data;
    assert.deepEqual(Object.keys(data), ['channels', 'subscriptions', 'user']);
    assert.deepEqual(data.channels, [ROWS, 'account', 'account.alice']);
    assert.equal(data.subscriptions.length, 1);
    assert.match(data.subscriptions[0], /^[0-9a-f]{20}$/);
    assert.equal(data.user.$id, 'alice');
    assert.equal(data.user.email, 'alice@example.com');
    client.close();
  });

  test('ping gets exactly {"type":"pong"}', async () => {
    const { client } = await open(emu);
    client.send({ type: 'ping' });
    const pong = await client.nextType('pong');
    assert.equal(pong.text, '{"type":"pong"}');
    client.close();
  });

  test('unknown project: 1008 error (text kept at handshake in 1.9), then TCP close', async () => {
    const client = Client.connect(`${emu.ws}?project=nope`);
    await expectErrorThenClose(client, 1008, 'Missing or unknown project ID');
  });

  test('project header wins over the query parameter', async () => {
    const client = Client.connect(`${emu.ws}?project=nope`, { headers: { 'X-Appwrite-Project': 'test' } });
    await client.nextType('connected');
    client.close();
  });

  test('a foreign Origin is rejected with 1008, localhost is accepted', async () => {
    const bad = Client.connect(`${emu.ws}?project=test`, { origin: 'https://evil.example:8443' });
    await expectErrorThenClose(
      bad,
      1008,
      'Invalid Origin. Register your new client (evil.example) as a new Web platform on your project console dashboard',
    );
    const { client } = await open(emu, '', { origin: 'http://localhost:3000' });
    client.close();
  });

  test('an invalid JWT gives 401 and a close', async () => {
    const client = Client.connect(`${emu.ws}?project=test`, { headers: { 'X-Appwrite-JWT': 'not.a.jwt' } });
    const frame = await expectErrorThenClose(client, 401);
    assert.match(frame.json.data.message, /^Failed to verify JWT\./);
  });

  test('an expired JWT gives 401 and a close', async () => {
    const r = await emu.request('POST', '/v1/users/alice/jwts', { duration: 0 }, {
      'X-Appwrite-Project': 'test',
      'X-Appwrite-Key': 'secret-key',
    });
    assert.equal(r.status, 201);
    const client = Client.connect(`${emu.ws}?project=test`, { headers: { 'X-Appwrite-JWT': r.body.jwt } });
    await expectErrorThenClose(client, 401, 'Failed to verify JWT. Invalid token: Expired');
  });

  test('a valid JWT authenticates by header; ?jwt= does not exist in 1.9.6', async () => {
    const r = await emu.request('POST', '/v1/users/bob/jwts', {}, { 'X-Appwrite-Project': 'test', 'X-Appwrite-Key': 'secret-key' });
    const byHeader = await open(emu, '', { headers: { 'X-Appwrite-JWT': r.body.jwt } });
    assert.equal(byHeader.connected.json.data.user.$id, 'bob');
    const byQuery = await open(emu, `&jwt=${encodeURIComponent(r.body.jwt)}`);
    assert.equal(byQuery.connected.json.data.user, null);
    byHeader.client.close();
    byQuery.client.close();
  });

  test('JWT together with a session gives 403 and a close', async () => {
    const r = await emu.request('POST', '/v1/users/bob/jwts', {}, { 'X-Appwrite-Project': 'test', 'X-Appwrite-Key': 'secret-key' });
    const client = Client.connect(`${emu.ws}?project=test`, {
      headers: { 'X-Appwrite-JWT': r.body.jwt, Cookie: `a_session_test=${bob.session}` },
    });
    await expectErrorThenClose(client, 403);
  });

  test('every session form authenticates', async () => {
    const forms = [
      { Cookie: `a_session_test=${carol.session}` },
      { Cookie: `other=1; a_session_test_legacy=${carol.session}` },
      { 'X-Appwrite-Session': carol.session },
      { 'X-Fallback-Cookies': JSON.stringify({ a_session_test: carol.session }) },
    ];
    for (const headers of forms) {
      const { client, connected } = await open(emu, '', { headers });
      assert.equal(connected.json.data.user?.$id, 'carol', JSON.stringify(headers));
      client.close();
    }
  });

  test('a frame over 64000 bytes drops the connection; 64000 bytes do not', async () => {
    const { client } = await open(emu);
    client.send('x'.repeat(64000));
    const error = await client.nextType('error');
    assert.equal(error.json.data.code, 1003);
    client.send('x'.repeat(64001));
    const closed = await client.waitClosed();
    assert.equal(closed.code, 1006);
  });

  test('the 33rd message within a minute gets 1013 and the socket stays open', async () => {
    const { client } = await open(emu, '', { headers: { 'X-Appwrite-Session': alice.session } });
    for (let i = 0; i < 33; ++i) client.send({ type: 'ping' });
    for (let i = 0; i < 32; ++i) await client.nextType('pong');
    const error = await client.next(() => true, 'the 33rd answer');
    assert.deepEqual(error.json, { type: 'error', data: { code: 1013, message: 'Error: Server Error' } });
    // Still open: an event still arrives (URL subscriptions are not needed for that check).
    assert.equal(client.closeInfo, null);
    client.send({ type: 'subscribe', data: [{ channels: [ROWS] }] });
    const refused = await client.nextType('error');
    assert.equal(refused.json.data.code, 1013);
    client.close();
  });

  test('format and type errors are 1003, masked in production, without a close', async () => {
    const { client } = await open(emu);
    client.send('{not json');
    assert.deepEqual((await client.nextType('error')).json.data, { code: 1003, message: 'Error: Server Error' });
    client.send({ type: 'bogus', data: {} });
    assert.deepEqual((await client.nextType('error')).json.data, { code: 1003, message: 'Error: Server Error' });
    client.send({ type: 'ping' });
    await client.nextType('pong');
    client.close();
  });

  test('subscribe and unsubscribe answer as Appwrite 1.9 does', async () => {
    const { client } = await open(emu, '', { headers: { 'X-Appwrite-Session': alice.session } });
    const query = '{"method":"equal","attribute":"status","values":["paid"]}';
    const first = await subscribe(client, [
      { subscriptionId: 'mine', channels: [ROWS], queries: [query] },
      { channels: ['account'] },
    ]);
    assert.equal(first.data.to, 'subscribe');
    assert.equal(first.data.success, true);
    assert.deepEqual(first.data.subscriptions[0], { subscriptionId: 'mine', channels: [ROWS], queries: [query] });
    const minted = first.data.subscriptions[1];
    assert.match(minted.subscriptionId, /^[0-9a-f]{20}$/);
    assert.deepEqual(minted.channels, ['account', 'account.alice']);
    assert.deepEqual(minted.queries, []);

    // Upsert: same id, new queries.
    const again = await subscribe(client, [{ subscriptionId: 'mine', channels: [ROWS], queries: [] }]);
    assert.deepEqual(again.data.subscriptions, [{ subscriptionId: 'mine', channels: [ROWS], queries: [] }]);
    const conns = await emu.connections();
    const mine = conns.find((c) => c.user === 'alice').subscriptions.filter((s) => s.subscriptionId === 'mine');
    assert.equal(mine.length, 1);

    client.send({ type: 'unsubscribe', data: [{ subscriptionId: 'mine' }, { subscriptionId: 'unknown' }] });
    const un = await client.next((m) => m.type === 'response' && m.data.to === 'unsubscribe', 'unsubscribe response');
    assert.equal(un.text, '{"type":"response","data":{"to":"unsubscribe","success":true,"subscriptions":[{"subscriptionId":"mine","removed":true},{"subscriptionId":"unknown","removed":false}]}}');

    client.send({ type: 'subscribe', data: [{ channels: [ROWS], queries: ['{"method":"regex"}'] }] });
    assert.equal((await client.nextType('error')).json.data.code, 1003);
    client.close();
  });

  test('events carry the full fan-out, a timestamp and the matching subscription ids', async () => {
    const { client } = await open(emu);
    const paid = '{"method":"equal","attribute":"status","values":["paid"]}';
    await subscribe(client, [
      { subscriptionId: 'all', channels: [ROWS] },
      { subscriptionId: 'paid', channels: [ROWS], queries: [paid] },
      { subscriptionId: 'other', channels: ['files'] },
    ]);
    const answer = await emu.publish({ payload: { $id: 'o1', status: 'open' } });
    assert.equal(answer.delivered, 1);
    assert.equal(answer.events.length, 64);
    assert.equal(answer.channels.length, 16);
    const open1 = await client.nextType('event');
    const data = open1.json.data;
    assert.deepEqual(Object.keys(data), ['events', 'channels', 'timestamp', 'payload', 'subscriptions']);
    assert.deepEqual(data.events, answer.events);
    assert.deepEqual(data.channels, answer.channels);
    assert.match(data.timestamp, TS);
    // A row carries the system fields Appwrite's models always have, added when not published.
    const { $createdAt, $updatedAt, ...fields } = data.payload;
    assert.deepEqual(fields, { $id: 'o1', status: 'open' });
    assert.match($createdAt, TS);
    assert.match($updatedAt, TS);
    assert.deepEqual(data.subscriptions, ['all']);
    await emu.publish({ payload: { $id: 'o1', status: 'paid' } });
    assert.deepEqual((await client.nextType('event')).json.data.subscriptions, ['all', 'paid']);
    client.close();
  });

  test('the authentication message re-binds the connection to the user', async () => {
    const { client } = await open(emu);
    await subscribe(client, [{ subscriptionId: 's1', channels: [ROWS] }]);
    client.send({ type: 'authentication', data: { session: bob.session } });
    const response = await client.next((m) => m.type === 'response' && m.data.to === 'authentication', 'auth response');
    assert.equal(response.json.data.success, true);
    assert.equal(response.json.data.user.$id, 'bob');
    const answer = await emu.publish({ payload: { $id: 'p' }, read: ['user:bob'] });
    assert.equal(answer.delivered, 1);
    assert.equal((await client.nextType('event')).json.data.payload.$id, 'p');
    client.send({ type: 'authentication', data: { session: 'bogus' } });
    assert.equal((await client.nextType('error')).json.data.code, 1003);
    client.close();
  });

  test('permissions: private rows, team events, guests-only rows', async () => {
    const guest = await open(emu, `&channels[]=${ROWS}&channels[]=teams`);
    const a = await open(emu, `&channels[]=${ROWS}&channels[]=teams`, { headers: { 'X-Appwrite-Session': alice.session } });
    const b = await open(emu, `&channels[]=${ROWS}&channels[]=teams`, { headers: { 'X-Appwrite-Session': bob.session } });
    const c = await open(emu, `&channels[]=${ROWS}&channels[]=teams`, { headers: { 'X-Appwrite-Session': carol.session } });

    assert.equal((await emu.publish({ payload: { $id: 'private' }, read: ['user:alice'] })).delivered, 1);
    assert.equal((await emu.publish({ event: 'teams.[teamId].update', params: { teamId: 't1' }, payload: { $id: 't1' } })).delivered, 2);
    assert.equal((await emu.publish({ payload: { $id: 'guests' }, read: ['guests'] })).delivered, 1);
    assert.equal((await emu.publish({ payload: { $id: 'users' }, read: ['users'] })).delivered, 3);
    assert.equal((await emu.publish({ payload: { $id: 'marker' }, read: ['any'] })).delivered, 4);

    const seen = async (conn) => {
      const ids = [];
      for (;;) {
        const id = (await conn.client.nextType('event')).json.data.payload.$id;
        ids.push(id);
        if (id === 'marker') return ids;
      }
    };
    assert.deepEqual(await seen(guest), ['guests', 'marker']);
    assert.deepEqual(await seen(a), ['private', 't1', 'users', 'marker']);
    assert.deepEqual(await seen(b), ['users', 'marker']);
    assert.deepEqual(await seen(c), ['t1', 'users', 'marker']);
    for (const conn of [guest, a, b, c]) conn.client.close();
  });

  test('/_emulator/disconnect drops a user\'s connections with a TCP close', async () => {
    await emu.waitConnections(0);
    const a = await open(emu, '', { headers: { 'X-Appwrite-Session': alice.session } });
    const g = await open(emu);
    assert.deepEqual(await emu.control('/_emulator/disconnect', { user: 'alice' }), { disconnected: 1 });
    assert.equal((await a.client.waitClosed()).code, 1006);
    const left = await emu.connections();
    assert.equal(left.length, 1);
    assert.equal(left[0].user, null);
    g.client.close();
  });

  test('/_emulator/stream numbers its events and reaches every reader', async () => {
    const { client } = await open(emu, `&channels[]=${ROWS}`);
    const answer = await emu.control('/_emulator/stream', {
      event: ROW_EVENT, params: ROW_PARAMS, payload: { status: 'x', seq: 'ignored' }, count: 500, rate: 0,
    });
    assert.equal(answer.sent, 500);
    assert.equal(answer.delivered, 500);
    for (let seq = 1; seq <= 500; ++seq) {
      const frame = await client.nextType('event');
      assert.deepEqual(frame.json.data.payload, { seq, status: 'x' });
      assert.equal(frame.json.data.subscriptions.length, 1);
    }
    client.close();
  });

  test('REST: version, account, sessions and JWTs', async () => {
    assert.deepEqual((await emu.request('GET', '/v1/health/version')).body, { version: '1.9.6' });
    const project = { 'X-Appwrite-Project': 'test' };
    const guest = await emu.request('GET', '/v1/account', undefined, project);
    assert.equal(guest.status, 401);
    assert.deepEqual(Object.keys(guest.body), ['message', 'code', 'type', 'version']);
    const login = await emu.request('POST', '/v1/account/sessions/email', { email: 'bob@example.com', password: 'pw-bob' }, project);
    assert.equal(login.status, 201);
    assert.equal(login.body.userId, 'bob');
    const me = await emu.request('GET', '/v1/account', undefined, { ...project, 'X-Appwrite-Session': login.body.secret });
    assert.equal(me.body.$id, 'bob');
    const wrong = await emu.request('POST', '/v1/account/sessions/email', { email: 'bob@example.com', password: 'nope' }, project);
    assert.equal(wrong.status, 401);
    const noKey = await emu.request('POST', '/v1/users/bob/sessions', {}, project);
    assert.equal(noKey.status, 401);
    const session = await emu.request('POST', '/v1/users/bob/sessions', {}, { ...project, 'X-Appwrite-Key': 'secret-key' });
    assert.equal(session.status, 201);
    const jwt = await emu.request('POST', '/v1/users/bob/jwts', {}, { ...project, 'X-Appwrite-Key': 'secret-key' });
    const byJwt = await emu.request('GET', '/v1/account', undefined, { ...project, 'X-Appwrite-JWT': jwt.body.jwt });
    assert.equal(byJwt.body.$id, 'bob');
    const byCookie = await emu.request('GET', '/v1/account', undefined, { ...project, Cookie: `a_session_test=${session.body.secret}` });
    assert.equal(byCookie.body.$id, 'bob');
  });
});

describe('profile 1.9 with --dev-errors', () => {
  let emu;
  before(async () => {
    emu = await Emulator.start(['--profile', '1.9', '--dev-errors']);
  });
  after(() => emu.stop());

  test('error messages are not masked', async () => {
    const { client } = await open(emu);
    client.send('{not json');
    assert.deepEqual((await client.nextType('error')).json.data, { code: 1003, message: 'Message format is not valid.' });
    client.send({ type: 'bogus' });
    assert.deepEqual((await client.nextType('error')).json.data, { code: 1003, message: 'Message type is not valid.' });
    client.close();
  });
});

describe('profile 1.8', () => {
  let emu;
  let alice;
  before(async () => {
    emu = await Emulator.start(['--profile', '1.8']);
    alice = await emu.createUser({ id: 'alice', email: 'alice@example.com', password: 'pw' });
  });
  after(() => emu.stop());

  test('connected frame has no subscriptions key', async () => {
    const { client, connected } = await open(emu, '&channels[]=databases.shop.tables.orders.rows&channels[]=account', {
      headers: { Cookie: `a_session_test=${alice.session}` },
    });
    assert.deepEqual(Object.keys(connected.json.data), ['channels', 'user']);
    // 1.8 drops every account.* channel it does not generate itself.
    assert.deepEqual(connected.json.data.channels, ['databases.shop.tables.orders.rows', 'account', 'account.alice']);
    assert.equal(connected.json.data.user.$id, 'alice');
    const answer = await emu.publish({ payload: { $id: 'o1' } });
    assert.equal(answer.events.length, 22);
    assert.equal(answer.channels.length, 6);
    const event = await client.nextType('event');
    assert.deepEqual(Object.keys(event.json.data), ['events', 'channels', 'timestamp', 'payload']);
    client.close();
  });

  test('no channels: 1008 masked in production, then close', async () => {
    const client = Client.connect(`${emu.ws}?project=test`);
    await expectErrorThenClose(client, 1008, 'Error: Server Error');
  });

  test('the query parameter wins over the project header', async () => {
    const client = Client.connect(`${emu.ws}?project=nope&channels[]=rows`, { headers: { 'X-Appwrite-Project': 'test' } });
    await expectErrorThenClose(client, 1008);
  });

  test('subscribe messages do not exist before 1.9', async () => {
    const { client } = await open(emu, '&channels[]=rows');
    client.send({ type: 'subscribe', data: [{ channels: ['rows'] }] });
    assert.equal((await client.nextType('error')).json.data.code, 1003);
    assert.deepEqual((await emu.request('GET', '/v1/health/version')).body, { version: '1.8.1' });
    client.close();
  });
});
