// The legacy `graphql-ws` subprotocol (the old Apollo protocol of npm
// subscriptions-transport-ws; not to be confused with the npm package
// graphql-ws, which speaks graphql-transport-ws). Checked message by message
// over a raw `ws` socket, and end to end with subscriptions-transport-ws's
// own SubscriptionClient.

import { test, after } from 'node:test';
import assert from 'node:assert/strict';
import { SubscriptionClient } from 'subscriptions-transport-ws';
import {
  env,
  WebSocket,
  sleep,
  unique,
  waitFor,
  withTimeout,
  createToken,
  rawSocket,
  assertClose,
  eventPos,
  primeSubscription,
  TOKEN_CREATED_SUB,
} from './helpers.mjs';

const LEGACY = 'graphql-ws';

const sockets = new Set();
const clients = new Set();
after(async () => {
  for (const s of sockets) await s.dispose();
  for (const c of clients) c.close(true, true);
});

async function openLegacy() {
  const s = rawSocket(LEGACY);
  sockets.add(s);
  await withTimeout(s.opened, 5000, 'the WebSocket handshake');
  assert.equal(s.protocol, LEGACY, 'server selected the legacy graphql-ws subprotocol');
  return s;
}

/** Next message of the given type (and id), skipping keep-alives only. */
async function nextOf(s, type, id, ms = 5000) {
  const msg = await s.nextMatching((m) => m.type !== 'ka', ms, `${type}${id ? ` ${id}` : ''}`);
  assert.equal(msg.type, type, `expected ${type}, got ${JSON.stringify(msg)}`);
  if (id !== undefined) assert.equal(msg.id, id);
  return msg;
}

/** Returns data.events of the next `data` message for id (ka skipped). */
async function nextEvent(s, id, ms) {
  const msg = await nextOf(s, 'data', id, ms);
  assert.equal(msg.payload.errors, undefined, `no errors: ${JSON.stringify(msg.payload.errors)}`);
  return msg.payload.data.events;
}

/** A legacy socket past connection_ack (the first ka may or may not have been read). */
async function ackedLegacy(payload = { Authorization: `Bearer ${env.adminToken}` }) {
  const s = await openLegacy();
  s.send({ type: 'connection_init', payload });
  await nextOf(s, 'connection_ack');
  return s;
}

/** Starts events(types: [TOKEN_CREATED]) as id and waits until it is live. */
async function liveSubscription(s, id) {
  s.send({ type: 'start', id, payload: { query: TOKEN_CREATED_SUB } });
  await primeSubscription(env.adminToken, (ms) => nextEvent(s, id, ms));
}

test('legacy: connection_init → connection_ack without payload → ka', async () => {
  const s = await openLegacy();
  s.send({ type: 'connection_init', payload: { Authorization: `Bearer ${env.adminToken}` } });
  const ack = await s.next(5000, 'connection_ack');
  assert.deepEqual(ack, { type: 'connection_ack' }, 'connection_ack first, without payload');
  assert.ok(!s.raw[0].includes(env.adminToken), 'ack does not echo the token');
  const ka = await s.next(5000, 'the first ka');
  assert.deepEqual(ka, { type: 'ka' }, 'a keep-alive follows the ack');
});

test('legacy: start a subscription; a later createApiToken over HTTP arrives as data', async () => {
  const s = await ackedLegacy();
  await liveSubscription(s, 'sub1');
  const created = await createToken(env.adminToken, { name: unique('legacy') });
  let msg;
  for (const deadline = Date.now() + 5000; ; ) {
    msg = await nextOf(s, 'data', 'sub1', Math.max(1, deadline - Date.now()));
    if (msg.payload?.data?.events?.subjectId === created.token.id) break;
  }
  assert.deepEqual(Object.keys(msg).sort(), ['id', 'payload', 'type'], 'data message shape');
  assert.equal(msg.payload.errors, undefined);
  const ev = msg.payload.data.events;
  assert.equal(ev.type, 'TOKEN_CREATED');
  assert.equal(ev.subjectId, created.token.id);
  eventPos(ev.id);
  assert.ok(!JSON.stringify(ev.payload).includes(created.secret), 'event payload never carries the secret');
});

test('legacy: stop → complete, and no data for the id after it', async () => {
  const s = await ackedLegacy();
  await liveSubscription(s, 'sub1');
  s.send({ type: 'stop', id: 'sub1' });
  const afterStop = await createToken(env.adminToken, { name: unique('legacy-after-stop') });
  await sleep(1000);
  const late = s.messages.filter((m) => m.type === 'data' && m.payload?.data?.events?.subjectId === afterStop.token.id);
  assert.deepEqual(late, [], 'no data after stop');
  // Data already in flight may precede the complete; nothing else may.
  const done = await s.nextMatching((m) => m.type !== 'ka' && !(m.type === 'data' && m.id === 'sub1'), 2000, 'complete sub1 after stop');
  assert.deepEqual(done, { type: 'complete', id: 'sub1' }, 'stop is answered with complete');
  assert.equal(s.closeInfo, null, 'still open');
});

test('legacy: connection_terminate → close 1000', async () => {
  const s = await ackedLegacy();
  s.send({ type: 'start', id: 'sub1', payload: { query: TOKEN_CREATED_SUB } });
  s.send({ type: 'connection_terminate' });
  const info = await s.waitClosed(5000, 'the close after connection_terminate');
  assert.equal(info.code, 1000, `connection_terminate closes normally (reason ${JSON.stringify(info.reason)})`);
  assert.ok(!s.messages.some((m) => m.type === 'connection_error'), `no connection_error: ${JSON.stringify(s.messages)}`);
});

test('legacy: a query via start yields one data message and complete', async () => {
  const s = await openLegacy();
  s.send({ type: 'connection_init', payload: { authToken: env.adminToken } });
  await nextOf(s, 'connection_ack');
  s.send({ type: 'start', id: 'q', payload: { query: '{ viewer { role org { slug } } }' } });
  const data = await nextOf(s, 'data', 'q');
  assert.deepEqual(data.payload, { data: { viewer: { role: 'ADMIN', org: { slug: 'acme' } } } });
  assert.deepEqual(await nextOf(s, 'complete', 'q'), { type: 'complete', id: 'q' });
  // The id is free again once complete.
  s.send({ type: 'start', id: 'q', payload: { query: '{ viewer { role } }' } });
  assert.equal((await nextOf(s, 'data', 'q')).payload.data.viewer.role, 'ADMIN');
  await nextOf(s, 'complete', 'q');
  assert.equal(s.closeInfo, null, 'still open');
});

test('legacy: an invalid operation yields an error message for its id, the connection stays', async () => {
  const s = await openLegacy();
  s.send({ type: 'connection_init', payload: { Authorization: `Bearer ${env.adminToken}` } });
  await nextOf(s, 'connection_ack');
  s.send({ type: 'start', id: 'bad', payload: { query: '{ noSuchField }' } });
  const msg = await s.nextMatching((m) => m.type !== 'ka' && m.id === 'bad', 5000, 'the error for bad');
  // Legacy servers report validation errors either as `error` or as `data` with errors.
  const errors = msg.type === 'error' ? [].concat(msg.payload) : msg.payload?.errors;
  assert.ok(Array.isArray(errors) && errors.length > 0, `errors reported: ${JSON.stringify(msg)}`);
  assert.ok(errors.every((e) => typeof e.message === 'string' && e.message.length > 0));
  s.send({ type: 'start', id: 'ok', payload: { query: '{ viewer { role } }' } });
  const data = await s.nextMatching((m) => m.type === 'data' && m.id === 'ok', 5000, 'data for ok');
  assert.equal(data.payload.data.viewer.role, 'ADMIN');
  assert.equal(s.closeInfo, null, 'still open');
});

test('legacy: bad token → connection_error, then close 4403, no ack', async () => {
  const bad = `dbk_invalid_${unique('legacy')}`;
  const s = await openLegacy();
  s.send({ type: 'connection_init', payload: { Authorization: `Bearer ${bad}` } });
  const info = await s.waitClosed(5000, 'the close after a bad token');
  assertClose(info, 4403, 'legacy bad token');
  assert.ok(s.messages.length >= 1, 'a message preceded the close');
  const err = s.messages[0];
  assert.equal(err.type, 'connection_error', `first message is connection_error: ${JSON.stringify(s.messages)}`);
  assert.equal(typeof err.payload?.message, 'string');
  assert.ok(err.payload.message.length > 0, 'connection_error says why');
  assert.ok(!s.messages.some((m) => m.type === 'connection_ack' || m.type === 'ka'), 'never acked');
  assert.ok(!s.raw.some((r) => r.includes(bad)) && !info.reason.includes(bad), 'token never echoed');
});

test('legacy: start before connection_init → connection_error, close 4401', async () => {
  const s = await openLegacy();
  s.send({ type: 'start', id: '1', payload: { query: '{ viewer { role } }' } });
  const info = await s.waitClosed(5000, 'the close');
  assertClose(info, 4401, 'legacy start before ack');
  assert.equal(s.messages[0]?.type, 'connection_error', `connection_error precedes the close: ${JSON.stringify(s.messages)}`);
  assert.ok(!s.messages.some((m) => m.type === 'data'), `nothing executed: ${JSON.stringify(s.messages)}`);
});

test('legacy: keep-alives repeat well within the 30 s client timeout', async (t) => {
  const s = await openLegacy();
  s.send({ type: 'connection_init', payload: { Authorization: `Bearer ${env.adminToken}` } });
  await nextOf(s, 'connection_ack');
  assert.equal((await s.next(5000, 'first ka')).type, 'ka');
  const start = Date.now();
  const second = await s.next(25_000, 'second ka');
  const interval = Date.now() - start;
  t.diagnostic(`ka interval ${interval} ms`);
  assert.equal(second.type, 'ka');
  assert.ok(interval < 20_000, `ka interval ${interval} ms leaves margin under 30 s`);
});

// ---------------------------------------------------------------------------
// The real legacy client

function legacyClient(connectionParams) {
  const rec = { connected: [], callbacks: [], disconnected: 0, errors: [] };
  const client = new SubscriptionClient(
    env.wsUrl,
    {
      reconnect: false,
      lazy: false,
      connectionParams,
      connectionCallback: (error) => rec.callbacks.push(error),
    },
    WebSocket,
  );
  clients.add(client);
  client.onConnected((payload) => rec.connected.push(payload));
  client.onDisconnected(() => rec.disconnected++);
  client.onError((e) => rec.errors.push(e));
  return { client, rec };
}

test('subscriptions-transport-ws SubscriptionClient receives a TOKEN_CREATED event', async () => {
  const { client, rec } = legacyClient({ Authorization: `Bearer ${env.adminToken}` });
  const queue = [];
  const state = { error: null, completed: false };
  const subscription = client.request({ query: TOKEN_CREATED_SUB }).subscribe({
    next: (r) => queue.push(r),
    error: (e) => (state.error = e),
    complete: () => (state.completed = true),
  });
  try {
    await waitFor(() => rec.callbacks.length > 0, 5000, 'connectionCallback');
    assert.deepEqual(rec.callbacks, [undefined], 'connected without connection_error');
    assert.deepEqual(rec.connected, [undefined], 'ack payload empty');

    const next = async (ms) => {
      await waitFor(() => queue.length || state.error || state.completed, ms, 'a result').catch((e) => {
        throw new Error(`timed out: ${e.message}`);
      });
      assert.equal(state.error, null, `subscription error: ${JSON.stringify(state.error)}`);
      const r = queue.shift();
      assert.ok(r, 'a result, not completion');
      assert.equal(r.errors, undefined, JSON.stringify(r.errors));
      return r.data.events;
    };
    await primeSubscription(env.adminToken, next);
    const created = await createToken(env.adminToken, { name: unique('stw') });
    let ev;
    for (const deadline = Date.now() + 5000; ; ) {
      ev = await next(Math.max(1, deadline - Date.now()));
      if (ev.subjectId === created.token.id) break;
    }
    assert.equal(ev.type, 'TOKEN_CREATED');
    assert.equal(rec.disconnected, 0);
  } finally {
    subscription.unsubscribe();
    client.close(true, true);
    clients.delete(client);
  }
});

test('subscriptions-transport-ws SubscriptionClient with a bad token gets connection_error and is closed', async () => {
  const { client, rec } = legacyClient({ Authorization: `Bearer dbk_invalid_${unique('stw')}` });
  try {
    await waitFor(() => rec.callbacks.length > 0, 5000, 'connectionCallback');
    const [error] = rec.callbacks;
    assert.ok(error && typeof error.message === 'string' && error.message.length > 0, `connection_error payload: ${JSON.stringify(error)}`);
    assert.deepEqual(rec.connected, [], 'never acked');
    await waitFor(() => rec.disconnected > 0, 5000, 'the disconnect');
  } finally {
    client.close(true, true);
    clients.delete(client);
  }
});
