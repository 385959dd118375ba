// Starts appwrite-emulator for a test and talks to it: HTTP control calls, raw WebSocket
// clients with deadline-bounded waits. The binary comes from $APPWRITE_EMULATOR (set by ctest).
import { spawn } from 'node:child_process';
import { createInterface } from 'node:readline';
import { WebSocket } from 'ws';

export const ROW_EVENT = 'databases.[databaseId].tables.[tableId].rows.[rowId].update';
export const ROW_PARAMS = { databaseId: 'shop', tableId: 'orders', rowId: 'o1' };
export const DEADLINE_MS = 10000;

export function emulatorBinary() {
  const binary = process.env.APPWRITE_EMULATOR;
  if (!binary) throw new Error('APPWRITE_EMULATOR must name the appwrite-emulator binary');
  return binary;
}

function withDeadline(promise, ms, what) {
  let timer;
  const timeout = new Promise((_, reject) => {
    timer = setTimeout(() => reject(new Error(`timed out after ${ms} ms waiting for ${what}`)), ms);
  });
  return Promise.race([promise, timeout]).finally(() => clearTimeout(timer));
}

// Resolves once `predicate()` is truthy, re-checking whenever `subscribe` signals a change.
export async function until(predicate, what, ms = DEADLINE_MS) {
  const deadline = Date.now() + ms;
  for (;;) {
    const value = await predicate();
    if (value) return value;
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((resolve) => setImmediate(resolve));
    await new Promise((resolve) => setTimeout(resolve, 10));
  }
}

export class Emulator {
  static async start(args = []) {
    const child = spawn(emulatorBinary(), ['--listen', '127.0.0.1:0', ...args], {
      stdio: ['ignore', 'pipe', 'inherit'],
    });
    const lines = createInterface({ input: child.stdout });
    const first = await withDeadline(
      new Promise((resolve, reject) => {
        lines.once('line', resolve);
        child.once('exit', (code) => reject(new Error(`appwrite-emulator exited with ${code}`)));
      }),
      DEADLINE_MS,
      'the "listening on" line',
    );
    const match = /^listening on (.+):(\d+)$/.exec(first);
    if (!match) throw new Error(`unexpected first line: ${first}`);
    return new Emulator(child, match[1], Number(match[2]));
  }

  constructor(child, host, port) {
    this.child = child;
    this.host = host;
    this.port = port;
    this.http = `http://${host}:${port}`;
    this.ws = `ws://${host}:${port}/v1/realtime`;
    this.exited = new Promise((resolve) => child.once('exit', (code, signal) => resolve({ code, signal })));
  }

  async request(method, path, body, headers = {}) {
    const response = await fetch(this.http + path, {
      method,
      headers: { 'content-type': 'application/json', ...headers },
      body: body === undefined ? undefined : JSON.stringify(body),
    });
    const text = await response.text();
    return { status: response.status, headers: response.headers, body: text ? JSON.parse(text) : null };
  }

  async control(path, body) {
    const r = await this.request(body === undefined ? 'GET' : 'POST', path, body);
    if (r.status !== 200 && r.status !== 201) throw new Error(`${path}: ${r.status} ${JSON.stringify(r.body)}`);
    return r.body;
  }

  createUser(user) {
    return this.control('/_emulator/users', user);
  }

  publish({ event = ROW_EVENT, params = ROW_PARAMS, payload = {}, read = ['any'], ...rest } = {}) {
    return this.control('/_emulator/publish', { event, params, payload, read, database_type: 'tablesdb', ...rest });
  }

  connections() {
    return this.control('/_emulator/connections');
  }

  // Waits until `n` realtime connections are registered (delivery targets).
  waitConnections(n) {
    return until(async () => (await this.connections()).length === n, `${n} connections`);
  }

  async stop() {
    if (this.child.exitCode === null && this.child.signalCode === null) this.child.kill('SIGTERM');
    return this.exited;
  }
}

// A raw WebSocket client that records every frame and whether/how the socket ended.
export class Client {
  static connect(url, { headers = {}, origin } = {}) {
    const options = { headers };
    if (origin) options.origin = origin;
    return new Client(new WebSocket(url, options));
  }

  constructor(socket) {
    this.socket = socket;
    this.frames = [];
    this.waiters = [];
    this.closeInfo = null;
    this.opened = new Promise((resolve, reject) => {
      socket.once('open', resolve);
      socket.once('error', reject);
    });
    this.closed = new Promise((resolve) => {
      socket.once('close', (code, reason) => {
        this.closeInfo = { code, reason: reason.toString() };
        this.notify();
        resolve(this.closeInfo);
      });
    });
    socket.on('error', () => {});
    socket.on('message', (data) => {
      this.frames.push({ text: data.toString(), json: JSON.parse(data.toString()) });
      this.notify();
    });
    this.cursor = 0;
  }

  notify() {
    const waiters = this.waiters;
    this.waiters = [];
    waiters.forEach((w) => w());
  }

  changed() {
    return new Promise((resolve) => this.waiters.push(resolve));
  }

  // The next frame (after the ones already taken) that satisfies `predicate`.
  async next(predicate = () => true, what = 'a frame', ms = DEADLINE_MS) {
    const deadline = Date.now() + ms;
    for (;;) {
      while (this.cursor < this.frames.length) {
        const frame = this.frames[this.cursor++];
        if (predicate(frame.json)) return frame;
      }
      if (this.closeInfo) throw new Error(`socket closed (${this.closeInfo.code}) while waiting for ${what}`);
      const left = deadline - Date.now();
      if (left <= 0) throw new Error(`timed out waiting for ${what}`);
      await withDeadline(this.changed(), left, what).catch(() => {});
    }
  }

  nextType(type, ms) {
    return this.next((m) => m.type === type, `a "${type}" frame`, ms);
  }

  send(message) {
    this.socket.send(typeof message === 'string' ? message : JSON.stringify(message));
  }

  waitClosed(ms = DEADLINE_MS) {
    return withDeadline(this.closed, ms, 'the socket to close');
  }

  close() {
    this.socket.terminate();
  }
}
