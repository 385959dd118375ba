// The official Appwrite Web SDK's list calls with its Query helpers against the emulator's
// list endpoints: rows through TablesDB, the same rows as documents through Databases, and
// files through Storage, paged with cursors, and an invalid query's AppwriteException.
import { WebSocket } from 'ws';
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { Emulator } from './emulator.mjs';

globalThis.WebSocket = WebSocket;
globalThis.window = globalThis;

const { Client, TablesDB, Databases, Storage, Query, AppwriteException } = await import('appwrite');

const ROWS = 250;
const HIDDEN = 25;
let emu;
let client;

// Row i was last updated at second i/2 (two rows per instant), so ordering needs the $id
// tie-break; alice may read the first ROWS rows, the HIDDEN after them only bob.
function updatedAt(i) {
  const second = Math.floor(i / 2);
  return new Date(Date.UTC(2026, 0, 1, 0, 0, 0) + second * 1000).toISOString().replace('Z', '+00:00');
}
const readable = (i) => i < ROWS;
const rowId = (i) => (readable(i) ? `row${String((i * 7) % ROWS).padStart(3, '0')}` : `bob${i}`);

before(async () => {
  emu = await Emulator.start(['--profile', '1.9']);
  const alice = await emu.createUser({ id: 'alice', email: 'alice@example.com', password: 'pw' });
  for (let i = 0; i < ROWS + HIDDEN; i++) {
    const id = rowId(i);
    await emu.publish({
      event: 'databases.[databaseId].tables.[tableId].rows.[rowId].create',
      params: { databaseId: 'shop', tableId: 'orders', rowId: id },
      payload: { $id: id, $tableId: 'orders', $databaseId: 'shop', n: i,
                 $createdAt: updatedAt(0), $updatedAt: updatedAt(i) },
      read: readable(i) ? ['user:alice'] : ['user:bob'],
    });
  }
  for (const [i, name] of ['a.txt', 'b.txt', 'c.txt'].entries()) {
    await emu.publish({
      event: 'buckets.[bucketId].files.[fileId].create',
      params: { bucketId: 'docs', fileId: `f${i}` },
      payload: { $id: `f${i}`, bucketId: 'docs', name, $createdAt: updatedAt(i), $updatedAt: updatedAt(i) },
      read: ['any'],
    });
  }
  client = new Client().setEndpoint(`${emu.http}/v1`).setProject('test').setSession(alice.session);
});

after(async () => {
  const { code } = await emu.stop();
  assert.equal(code, 0);
});

// Pages through a list call with cursorAfter; returns every item in order.
async function pageAll(list, key, from, pageSize) {
  const all = [];
  let cursor;
  for (let pages = 0; pages < 100; pages++) {
    const queries = [Query.greaterThanEqual('$updatedAt', from), Query.orderAsc('$updatedAt'),
                     Query.orderAsc('$id'), Query.limit(pageSize)];
    if (cursor) queries.push(Query.cursorAfter(cursor));
    const page = await list(queries);
    if (page[key].length === 0) return { all, total: page.total };
    all.push(...page[key]);
    cursor = page[key][page[key].length - 1].$id;
  }
  throw new Error('too many pages');
}

function expectedRows(fromIndex) {
  const rows = [];
  for (let i = fromIndex; i < ROWS + HIDDEN; i++) if (readable(i)) rows.push([updatedAt(i), rowId(i)]);
  rows.sort((a, b) => (a[0] === b[0] ? (a[1] < b[1] ? -1 : 1) : a[0] < b[0] ? -1 : 1));
  return rows.map((r) => r[1]);
}

test('TablesDB.listRows pages through every readable row once, in $updatedAt then $id order', async () => {
  const tables = new TablesDB(client);
  const { all, total } = await pageAll(
    (queries) => tables.listRows({ databaseId: 'shop', tableId: 'orders', queries }), 'rows', updatedAt(0), 40);
  const want = expectedRows(0);
  assert.equal(want.length, ROWS);
  assert.equal(total, want.length);
  assert.deepEqual(all.map((r) => r.$id), want);
  assert.equal(new Set(all.map((r) => r.$id)).size, all.length);
  assert.equal(all[0].$tableId, 'orders');
  assert.equal(all[0].$databaseId, 'shop');
});

test('Databases.listDocuments lists the same rows as documents from a later instant', async () => {
  const databases = new Databases(client);
  const from = updatedAt(100);
  const { all } = await pageAll(
    (queries) => databases.listDocuments({ databaseId: 'shop', collectionId: 'orders', queries }),
    'documents', from, 33);
  assert.deepEqual(all.map((d) => d.$id), expectedRows(100));
  assert.equal(all[0].$collectionId, 'orders');
  assert.equal(all[0].$tableId, undefined);
  const counted = await databases.listDocuments({ databaseId: 'shop', collectionId: 'orders',
                                                  queries: [Query.limit(1)], total: false });
  assert.equal(counted.total, 0);
  assert.equal(counted.documents.length, 1);
});

test('Storage.listFiles pages through a bucket', async () => {
  const storage = new Storage(client);
  const { all } = await pageAll((queries) => storage.listFiles({ bucketId: 'docs', queries }),
                                'files', updatedAt(0), 2);
  assert.deepEqual(all.map((f) => f.name), ['a.txt', 'b.txt', 'c.txt']);
});

test('an invalid query comes back as an AppwriteException with Appwrite\'s code and type', async () => {
  const tables = new TablesDB(client);
  await assert.rejects(
    tables.listRows({ databaseId: 'shop', tableId: 'orders', queries: [Query.equal('missing', 1)] }),
    (e) => e instanceof AppwriteException && e.code === 400 && e.type === 'general_query_invalid' &&
      e.message === 'Invalid query: Attribute not found in schema: missing');
  await assert.rejects(
    tables.listRows({ databaseId: 'shop', tableId: 'orders', queries: [Query.cursorAfter('nope')] }),
    (e) => e instanceof AppwriteException && e.code === 400 && e.type === 'general_cursor_not_found');
  await assert.rejects(
    tables.listRows({ databaseId: 'shop', tableId: 'missing' }),
    (e) => e instanceof AppwriteException && e.code === 404 && e.type === 'table_not_found');
});
