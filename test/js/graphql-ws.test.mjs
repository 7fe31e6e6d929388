// The graphql-transport-ws subprotocol on /graphql, exercised with the real
// npm `graphql-ws` client (createClient) and, for the exact close codes and
// message shapes, with a raw `ws` socket.

import { test, after } from 'node:test';
import assert from 'node:assert/strict';
import { createClient } from 'graphql-ws';
import {
  env,
  WebSocket,
  sleep,
  unique,
  waitFor,
  withTimeout,
  gqlData,
  createToken,
  revokeToken,
  rawSocket,
  assertClose,
  eventPos,
  primeSubscription,
  TOKEN_CREATED_SUB,
  resultQueue,
  describeError,
} from './helpers.mjs';

const PROTOCOL = 'graphql-transport-ws';

// Every client and raw socket a test opens is closed here too, so a failing
// assertion never leaves a handle that keeps node running.
const clients = new Set();
const sockets = new Set();
after(async () => {
  for (const c of clients) await withTimeout(Promise.resolve(c.dispose()), 2000, 'client dispose').catch(() => {});
  for (const s of sockets) await s.dispose();
});

/**
 * A graphql-ws client with everything the tests look at recorded:
 * connecting/connected counts, ack payloads and every close event.
 * Defaults: lazy false (connect now), retryAttempts 0 (surface close codes).
 */
function makeClient(token, options = {}) {
  const rec = { connecting: 0, connected: 0, ackPayloads: [], closed: [], nonLazyErrors: [] };
  const client = createClient({
    url: env.wsUrl,
    webSocketImpl: WebSocket,
    connectionParams: token === null ? undefined : { Authorization: `Bearer ${token}` },
    lazy: false,
    retryAttempts: 0,
    onNonLazyError: (err) => rec.nonLazyErrors.push(err),
    on: {
      connecting: () => rec.connecting++,
      connected: (_socket, payload) => {
        rec.connected++;
        rec.ackPayloads.push(payload);
      },
      closed: (event) => rec.closed.push({ code: event?.code, reason: event?.reason }),
    },
    ...options,
  });
  clients.add(client);
  return {
    client,
    rec,
    async dispose() {
      clients.delete(client);
      await withTimeout(Promise.resolve(client.dispose()), 2000, 'client dispose');
    },
  };
}

/** Subscribes through client.subscribe and queues its results (see resultQueue). */
function subscribe(client, payload) {
  const q = resultQueue();
  q.unsubscribe = client.subscribe(payload, q.sink);
  return q;
}

/** A raw graphql-transport-ws socket that has been acked with the token. */
async function ackedSocket(token = env.adminToken) {
  const s = rawSocket(PROTOCOL);
  sockets.add(s);
  await withTimeout(s.opened, 5000, 'the WebSocket handshake');
  assert.equal(s.protocol, PROTOCOL, 'server selected graphql-transport-ws');
  s.send({ type: 'connection_init', payload: { Authorization: `Bearer ${token}` } });
  const ack = await s.next(5000, 'connection_ack');
  assert.equal(ack.type, 'connection_ack', `first message is connection_ack: ${JSON.stringify(ack)}`);
  return s;
}

// ---------------------------------------------------------------------------
// Subscriptions with the graphql-ws client

test('admin subscription receives the TOKEN_CREATED event of a later createApiToken over HTTP', async () => {
  const { client, rec, dispose } = makeClient(env.adminToken);
  try {
    const sub = subscribe(client, { query: TOKEN_CREATED_SUB });
    await waitFor(() => rec.connected, 5000, 'connection_ack');
    await primeSubscription(env.adminToken, (ms) => sub.nextEvent(ms));

    const created = await createToken(env.adminToken, { name: unique('sub'), role: 'LIGHT_AGENT' });
    const ev = await sub.eventFor(created.token.id, 5000);
    assert.equal(ev.type, 'TOKEN_CREATED');
    assert.equal(ev.subjectId, created.token.id, 'subjectId is the created token id');
    eventPos(ev.id);
    assert.ok(!Number.isNaN(Date.parse(ev.occurredAt)), `occurredAt ${ev.occurredAt} is a timestamp`);
    assert.notEqual(ev.payload, null, 'payload is present');
    assert.ok(!JSON.stringify(ev.payload).includes(created.secret), 'event payload never carries the secret');
    // Only TOKEN_CREATED was asked for.
    for (const r of sub.all) assert.equal(r.data?.events?.type, 'TOKEN_CREATED', `filtered by type: ${JSON.stringify(r)}`);

    // subjectId resolves to the token through node(id:).
    const data = await gqlData(env.adminToken, 'query ($id: ID!) { node(id: $id) { id ... on ApiToken { name role } } }', {
      id: ev.subjectId,
    });
    assert.deepEqual(data.node, { id: created.token.id, name: created.token.name, role: 'LIGHT_AGENT' });

    assert.equal(sub.state.error, undefined);
    assert.equal(rec.closed.length, 0, `no close while subscribed: ${JSON.stringify(rec.closed)}`);
    sub.unsubscribe();
  } finally {
    await dispose();
  }
});

test('resume with events(after: X) replays the following events in order, none twice, then continues live', async () => {
  // Phase 1: see three events live and remember the first one's id.
  const first = makeClient(env.adminToken);
  const mine = [];
  let x;
  try {
    const sub = subscribe(first.client, { query: TOKEN_CREATED_SUB });
    await waitFor(() => first.rec.connected, 5000, 'connection_ack');
    await primeSubscription(env.adminToken, (ms) => sub.nextEvent(ms));
    for (let i = 0; i < 3; i++) {
      const created = await createToken(env.adminToken, { name: unique(`resume${i}`) });
      const ev = await sub.eventFor(created.token.id, 5000);
      mine.push({ tokenId: created.token.id, eventId: ev.id });
    }
    x = mine[0].eventId;
    sub.unsubscribe();
  } finally {
    await first.dispose();
  }

  // Phase 2: an event while nobody is subscribed must be replayed too.
  const offline = await createToken(env.adminToken, { name: unique('resume-offline') });
  mine.push({ tokenId: offline.token.id });

  // What the server says follows X, read over HTTP before resubscribing.
  const page = await gqlData(
    env.adminToken,
    'query ($after: String) { events(first: 500, after: $after, types: [TOKEN_CREATED]) { edges { node { id type subjectId } } pageInfo { hasNextPage } } }',
    { after: x },
  );
  const listed = page.events.edges.map((e) => e.node);
  assert.ok(listed.length >= 3, `events(after: X) lists at least the 3 later events, got ${listed.length}`);

  // Phase 3: resubscribe with after: X.
  const second = makeClient(env.adminToken);
  try {
    const sub = subscribe(second.client, { query: TOKEN_CREATED_SUB, variables: { after: x } });
    const received = [];
    const want = new Set(mine.slice(1).map((m) => m.tokenId));
    const deadline = Date.now() + 10_000;
    while ([...want].some((id) => !received.some((e) => e.subjectId === id)) || received.length < listed.length) {
      received.push(await sub.nextEvent(Math.max(1, deadline - Date.now()), 'the replayed events'));
    }
    // Then a live one on the same subscription.
    const live = await createToken(env.adminToken, { name: unique('resume-live') });
    const liveEv = await sub.eventFor(live.token.id, 5000);
    // Everything up to and including liveEv, in arrival order.
    const upToLive = [...received];
    for (const r of sub.all.slice(received.length)) {
      upToLive.push(r.data.events);
      if (r.data.events.id === liveEv.id) break;
    }

    const ids = upToLive.map((e) => e.id);
    assert.ok(!ids.includes(x), 'the event X itself is not replayed');
    assert.equal(new Set(ids).size, ids.length, `no event twice: ${ids.join(',')}`);
    for (let i = 1; i < ids.length; i++) {
      assert.ok(eventPos(ids[i]) > eventPos(ids[i - 1]), `ids increase: ${ids[i - 1]} then ${ids[i]}`);
    }
    assert.ok(eventPos(ids[0]) > eventPos(x), `first replayed id ${ids[0]} follows X=${x}`);
    // The replay is exactly what the HTTP listing returned, in the same order.
    assert.deepEqual(
      upToLive.slice(0, listed.length).map((e) => ({ id: e.id, type: e.type, subjectId: e.subjectId })),
      listed,
      'replay equals events(after: X)',
    );
    // Our own events after X: all there, in the order they were created.
    const ourOrder = [...mine.slice(1).map((m) => m.tokenId), live.token.id];
    assert.deepEqual(
      upToLive.filter((e) => ourOrder.includes(e.subjectId)).map((e) => e.subjectId),
      ourOrder,
      'the events of the tokens created after X arrive once each, in creation order',
    );
    // Where phase 1 saw them live, the replay has the same ids.
    for (const m of mine.slice(1, 3)) {
      assert.equal(upToLive.find((e) => e.subjectId === m.tokenId).id, m.eventId, 'replayed id equals the live id');
    }
    assert.equal(sub.state.error, undefined);
    sub.unsubscribe();
  } finally {
    await second.dispose();
  }
});

// ---------------------------------------------------------------------------
// Authentication

test('invalid token: the client sees close 4403 exactly once and never connection_ack (retryAttempts 0)', async () => {
  const bad = `dbk_invalid_${unique('x')}`;
  const { rec, dispose } = makeClient(bad);
  try {
    await waitFor(() => rec.closed.length > 0, 5000, 'the close');
    await sleep(500); // nothing more may happen
    assert.equal(rec.closed.length, 1, `exactly one close: ${JSON.stringify(rec.closed)}`);
    assertClose(rec.closed[0], 4403, 'invalid token');
    assert.ok(!rec.closed[0].reason.includes(bad), 'close reason does not echo the token');
    assert.equal(rec.connected, 0, 'never acked');
    assert.equal(rec.connecting, 1, 'no retry with retryAttempts 0');
    assert.equal(rec.nonLazyErrors.length, 1, 'the client reported the failure once');
  } finally {
    await dispose();
  }
});

test('invalid token with retries: every attempt is closed 4403, none acked, attempts bounded', async (t) => {
  const retryAttempts = 2;
  const { rec, dispose } = makeClient(`dbk_invalid_${unique('y')}`, {
    retryAttempts,
    retryWait: () => sleep(50),
  });
  try {
    await waitFor(() => rec.nonLazyErrors.length > 0, 15_000, 'the client to give up');
    const attempts = rec.connecting;
    await sleep(500);
    t.diagnostic(`connection attempts: ${attempts}, closes: ${rec.closed.map((c) => c.code).join(',')}`);
    assert.equal(rec.connecting, attempts, 'no attempt after the client gave up');
    assert.ok(attempts >= 1 && attempts <= 1 + retryAttempts, `attempts ${attempts} within 1..${1 + retryAttempts}`);
    assert.equal(rec.closed.length, attempts, 'one close per attempt');
    for (const c of rec.closed) assertClose(c, 4403, 'each attempt');
    assert.equal(rec.connected, 0, 'never acked');
    assert.equal(rec.nonLazyErrors.length, 1);
  } finally {
    await dispose();
  }
});

test('raw socket: bad token gets no connection_ack, close 4403, nothing echoes the token', async () => {
  const bad = `dbk_invalid_${unique('z')}`;
  const s = rawSocket(PROTOCOL);
  sockets.add(s);
  await withTimeout(s.opened, 5000, 'the WebSocket handshake');
  s.send({ type: 'connection_init', payload: { Authorization: `Bearer ${bad}` } });
  const info = await s.waitClosed(5000);
  assertClose(info, 4403, 'bad token');
  assert.ok(!s.messages.some((m) => m.type === 'connection_ack'), `no ack: ${JSON.stringify(s.messages)}`);
  assert.ok(!s.raw.some((r) => r.includes(bad)) && !info.reason.includes(bad), 'token never echoed');
});

test('raw socket: connection_init without credentials is closed 4403', async () => {
  const s = rawSocket(PROTOCOL);
  sockets.add(s);
  await withTimeout(s.opened, 5000, 'the WebSocket handshake');
  s.send({ type: 'connection_init' });
  const info = await s.waitClosed(5000);
  assertClose(info, 4403, 'no credentials');
  assert.ok(!s.messages.some((m) => m.type === 'connection_ack'), `no ack: ${JSON.stringify(s.messages)}`);
});

test('raw socket: connection_ack carries no payload and never the token, for every accepted key', async () => {
  const secret = env.adminToken;
  const variants = [
    { Authorization: `Bearer ${secret}` },
    { authorization: `Bearer ${secret}` },
    { authToken: secret },
    { token: secret },
  ];
  for (const payload of variants) {
    const s = rawSocket(PROTOCOL);
    sockets.add(s);
    try {
      await withTimeout(s.opened, 5000, 'the WebSocket handshake');
      s.send({ type: 'connection_init', payload });
      const ack = await s.next(5000, `connection_ack for key ${Object.keys(payload)[0]}`);
      assert.deepEqual(ack, { type: 'connection_ack' }, `ack has no payload (key ${Object.keys(payload)[0]})`);
      assert.ok(!s.raw[0].includes(secret), 'the ack frame does not contain the secret');
    } finally {
      await s.dispose();
      sockets.delete(s);
    }
  }
});

test('graphql-ws client: the ack payload it reports is empty', async () => {
  const { rec, dispose } = makeClient(env.adminToken);
  try {
    await waitFor(() => rec.connected, 5000, 'connection_ack');
    assert.deepEqual(rec.ackPayloads, [undefined], 'connection_ack carried no payload');
  } finally {
    await dispose();
  }
});

test('revoking the token a connection authenticated with closes it 4403; other connections stay', async () => {
  const victim = await createToken(env.adminToken, { name: unique('revoke-me'), role: 'AGENT' });
  const doomed = makeClient(victim.secret);
  const bystander = makeClient(env.adminToken);
  try {
    const sub = subscribe(doomed.client, { query: 'subscription { events { id type } }' });
    await waitFor(() => doomed.rec.connected && bystander.rec.connected, 5000, 'both connection_acks');

    await revokeToken(env.adminToken, victim.token.id);
    await waitFor(() => doomed.rec.closed.length > 0, 5000, 'the revoked connection to close');
    assertClose(doomed.rec.closed[0], 4403, 'revoked token');
    await waitFor(() => sub.state.error !== undefined, 2000, 'the subscription to report the close');
    assert.equal(sub.state.error?.code, 4403, `subscription ended by the 4403 close: ${describeError(sub.state.error)}`);
    assert.equal(sub.all.length, 0, 'an agent got no token events');

    // The admin's connection is still open and answers.
    const results = [];
    for await (const r of bystander.client.iterate({ query: '{ viewer { role } }' })) results.push(r);
    assert.deepEqual(results, [{ data: { viewer: { role: 'ADMIN' } } }]);
    assert.equal(bystander.rec.closed.length, 0, 'bystander connection not closed');

    // A new connection with the revoked secret is refused.
    const again = makeClient(victim.secret);
    try {
      await waitFor(() => again.rec.closed.length > 0, 5000, 'the refused connection to close');
      assertClose(again.rec.closed[0], 4403, 'reconnect with a revoked token');
      assert.equal(again.rec.connected, 0);
    } finally {
      await again.dispose();
    }
  } finally {
    await doomed.dispose();
    await bystander.dispose();
  }
});

// ---------------------------------------------------------------------------
// Authorization of events

test("an agent's events subscription receives no token events while the admin's does", async () => {
  const agentLive = makeClient(env.agentToken);
  const agentReplay = makeClient(env.agentToken);
  const admin = makeClient(env.adminToken);
  try {
    // The agent subscribes to every type it may see, live and replayed from the start.
    const live = subscribe(agentLive.client, { query: 'subscription { events { id type subjectId } }' });
    const replay = subscribe(agentReplay.client, { query: 'subscription { events(after: "0") { id type subjectId } }' });
    await waitFor(() => agentLive.rec.connected && agentReplay.rec.connected, 5000, 'the agent connection_acks');

    // The admin subscription is opened after the agent's and primed, so by
    // the time it is live the agent's subscribe has long been processed.
    const adminSub = subscribe(admin.client, { query: TOKEN_CREATED_SUB });
    await waitFor(() => admin.rec.connected, 5000, 'the admin connection_ack');
    await primeSubscription(env.adminToken, (ms) => adminSub.nextEvent(ms));

    const created = await createToken(env.adminToken, { name: unique('hidden') });
    const ev = await adminSub.eventFor(created.token.id, 5000);
    assert.equal(ev.type, 'TOKEN_CREATED');
    await sleep(1000);

    // The org has TOKEN_CREATED events (the admin just saw some), yet the agent got none.
    for (const [name, sub] of [['live', live], ['replay from 0', replay]]) {
      assert.equal(sub.state.error, undefined, `agent ${name} subscription not rejected: ${describeError(sub.state.error)}`);
      assert.equal(sub.state.completed, false, `agent ${name} subscription still open`);
      const tokenEvents = sub.all.filter((r) => /^TOKEN_/.test(r.data?.events?.type ?? ''));
      assert.deepEqual(tokenEvents, [], `agent ${name} subscription received no token events`);
      assert.ok(
        sub.all.every((r) => r.errors === undefined),
        `agent ${name} subscription got no errors: ${JSON.stringify(sub.all)}`,
      );
    }
    // The agent cannot read them over HTTP either.
    const page = await gqlData(env.agentToken, '{ events(first: 500) { edges { node { id type } } } }');
    assert.deepEqual(
      page.events.edges.filter((e) => /^TOKEN_/.test(e.node.type)),
      [],
      'events query shows an agent no token events',
    );
  } finally {
    await agentLive.dispose();
    await agentReplay.dispose();
    await admin.dispose();
  }
});

// ---------------------------------------------------------------------------
// Queries over the websocket

test('a query over the websocket returns exactly one result, equal to the HTTP answer', async () => {
  const { client, rec, dispose } = makeClient(env.adminToken);
  try {
    const query = '{ viewer { role token { id } org { slug } } }';
    const results = [];
    for await (const r of client.iterate({ query })) results.push(r);
    assert.equal(results.length, 1, `one result: ${JSON.stringify(results)}`);
    const http = await gqlData(env.adminToken, query);
    assert.deepEqual(results[0], { data: http });
    assert.equal(results[0].data.viewer.role, 'ADMIN');
    assert.equal(results[0].data.viewer.org.slug, 'acme');
    assert.equal(rec.closed.length, 0);
  } finally {
    await dispose();
  }
});

test('over the websocket an agent is FORBIDDEN to createApiToken, an admin may (BAD_USER_INPUT for an empty name)', async () => {
  const agent = makeClient(env.agentToken);
  const admin = makeClient(env.adminToken);
  const mutation = 'mutation ($input: CreateApiTokenInput!) { createApiToken(input: $input) { token { id name } secret } }';
  const collect = async (client, input) => {
    const out = [];
    for await (const r of client.iterate({ query: mutation, variables: { input } })) out.push(r);
    return out;
  };
  try {
    const name = unique('ws-agent-try');
    const denied = await collect(agent.client, { name, role: 'AGENT', userName: 'e2e-js' });
    assert.equal(denied.length, 1, JSON.stringify(denied));
    assert.equal(denied[0].errors?.[0]?.extensions?.code, 'FORBIDDEN', JSON.stringify(denied[0]));
    assert.ok(!denied[0].data?.createApiToken, 'no token for the agent');

    const invalid = await collect(admin.client, { name: '', role: 'AGENT', userName: 'e2e-js' });
    assert.equal(invalid.length, 1, JSON.stringify(invalid));
    assert.equal(invalid[0].errors?.[0]?.extensions?.code, 'BAD_USER_INPUT', JSON.stringify(invalid[0]));
    assert.equal(invalid[0].errors[0].extensions.argument, 'input.name');

    const made = await collect(admin.client, { name: unique('ws-admin'), role: 'AGENT', userName: 'e2e-js' });
    assert.equal(made.length, 1, JSON.stringify(made));
    assert.equal(made[0].errors, undefined, JSON.stringify(made[0].errors));
    const id = made[0].data.createApiToken.token.id;
    // The agent's attempt left no token behind; the admin's exists.
    const list = await gqlData(env.adminToken, '{ apiTokens(first: 100) { edges { node { id name } } } }');
    const names = list.apiTokens.edges.map((e) => e.node.name);
    assert.ok(!names.includes(name), 'the forbidden token was not created');
    assert.ok(list.apiTokens.edges.some((e) => e.node.id === id), 'the admin token is listed');
    assert.equal(agent.rec.closed.length + admin.rec.closed.length, 0, 'errors do not close connections');
  } finally {
    await agent.dispose();
    await admin.dispose();
  }
});

test('another org cannot see acme events over the websocket', async () => {
  const other = makeClient(env.otherAdminToken);
  const admin = makeClient(env.adminToken);
  try {
    const otherSub = subscribe(other.client, { query: TOKEN_CREATED_SUB });
    await waitFor(() => other.rec.connected, 5000, 'the globex connection_ack');
    // Live for globex's own events, so silence about acme's means something.
    await primeSubscription(env.otherAdminToken, (ms) => otherSub.nextEvent(ms));
    const seenBefore = otherSub.all.length;
    const adminSub = subscribe(admin.client, { query: TOKEN_CREATED_SUB });
    await waitFor(() => admin.rec.connected, 5000, 'the acme connection_ack');
    await primeSubscription(env.adminToken, (ms) => adminSub.nextEvent(ms));
    const created = await createToken(env.adminToken, { name: unique('acme-only') });
    await adminSub.eventFor(created.token.id, 5000);
    await sleep(500);
    assert.equal(otherSub.state.error, undefined, `globex subscription open: ${describeError(otherSub.state.error)}`);
    const acmeIds = new Set(adminSub.all.map((r) => r.data.events.subjectId));
    const leaked = otherSub.all.filter((r) => acmeIds.has(r.data?.events?.subjectId));
    assert.ok(seenBefore > 0, 'globex subscription delivered its own events');
    assert.deepEqual(leaked, [], 'globex received none of the acme token events');
  } finally {
    await other.dispose();
    await admin.dispose();
  }
});

test('a GraphQL error on subscribe arrives as an error message, and the connection stays usable', async () => {
  const { client, rec, dispose } = makeClient(env.adminToken);
  try {
    const sub = subscribe(client, { query: 'subscription { events(after: "not-an-id") { id } }' });
    await waitFor(() => sub.state.error !== undefined || sub.all.length > 0, 5000, 'the subscription to fail');
    const errors = sub.state.error ?? sub.all[0].errors;
    assert.ok(Array.isArray(errors) && errors.length > 0, `errors reported: ${describeError(sub.state.error ?? sub.all)}`);
    assert.equal(errors[0].extensions?.code, 'BAD_USER_INPUT');
    assert.equal(errors[0].extensions?.argument, 'after');
    const results = [];
    for await (const r of client.iterate({ query: '{ viewer { role } }' })) results.push(r);
    assert.equal(results.length, 1);
    assert.equal(rec.closed.length, 0, 'an operation error does not close the connection');
  } finally {
    await dispose();
  }
});

// ---------------------------------------------------------------------------
// Close codes, provoked with a raw ws socket

test('close 4400: unknown message type', async () => {
  const s = await ackedSocket();
  s.send({ type: 'bogus_type' });
  assertClose(await s.waitClosed(5000), 4400, 'unknown message type');
});

test('close 4400: invalid JSON', async () => {
  const s = await ackedSocket();
  s.send('{"type": "subscribe", ');
  assertClose(await s.waitClosed(5000), 4400, 'invalid JSON');
});

test('close 4400: invalid JSON as the first message, before connection_init', async () => {
  const s = rawSocket(PROTOCOL);
  sockets.add(s);
  await withTimeout(s.opened, 5000, 'the WebSocket handshake');
  s.send('not json at all');
  assertClose(await s.waitClosed(5000), 4400, 'invalid JSON before init');
});

test('close 4401: subscribe before connection_ack', async () => {
  const s = rawSocket(PROTOCOL);
  sockets.add(s);
  await withTimeout(s.opened, 5000, 'the WebSocket handshake');
  s.send({ type: 'subscribe', id: '1', payload: { query: '{ viewer { role } }' } });
  const info = await s.waitClosed(5000);
  assertClose(info, 4401, 'subscribe before ack');
  assert.ok(!s.messages.some((m) => m.type === 'next'), `nothing executed: ${JSON.stringify(s.messages)}`);
});

test('close 4406: no subprotocol offered', async () => {
  const s = rawSocket(undefined);
  sockets.add(s);
  await withTimeout(s.opened, 5000, 'the WebSocket handshake');
  assert.equal(s.protocol, '', 'no subprotocol selected');
  assertClose(await s.waitClosed(5000), 4406, 'no subprotocol');
});

test('close 4408: no connection_init within the init timeout', async (t) => {
  const s = rawSocket(PROTOCOL);
  sockets.add(s);
  await withTimeout(s.opened, 5000, 'the WebSocket handshake');
  const start = Date.now();
  const info = await s.waitClosed(6000, 'the init timeout close');
  const elapsed = Date.now() - start;
  t.diagnostic(`closed after ${elapsed} ms`);
  assertClose(info, 4408, 'init timeout');
  assert.ok(elapsed >= 2500, `closed by the ~3 s timeout, not at once (${elapsed} ms)`);
  assert.deepEqual(s.messages, [], 'nothing was sent before the close');
});

test('close 4409: duplicate active subscription id', async () => {
  const s = await ackedSocket();
  const payload = { query: 'subscription { events { id } }' };
  s.send({ type: 'subscribe', id: 'dup', payload });
  await sleep(200); // let the first one become active
  s.send({ type: 'subscribe', id: 'dup', payload });
  const info = await s.waitClosed(5000);
  assertClose(info, 4409, 'duplicate id');
});

test('close 4429: second connection_init', async () => {
  const s = await ackedSocket();
  s.send({ type: 'connection_init', payload: { Authorization: `Bearer ${env.adminToken}` } });
  assertClose(await s.waitClosed(5000), 4429, 'second connection_init');
  assert.ok(!s.messages.slice(1).some((m) => m.type === 'connection_ack'), 'no second ack');
});

test('raw socket: ping is answered with pong, a completed id may be reused', async () => {
  const s = await ackedSocket();
  s.send({ type: 'ping' });
  const pong = await s.next(5000, 'pong');
  assert.equal(pong.type, 'pong');

  s.send({ type: 'subscribe', id: 'q1', payload: { query: '{ viewer { role } }' } });
  const next = await s.next(5000, 'next');
  assert.equal(next.type, 'next');
  assert.equal(next.id, 'q1');
  assert.equal(next.payload.data.viewer.role, 'ADMIN');
  const done = await s.next(5000, 'complete');
  assert.deepEqual(done, { type: 'complete', id: 'q1' });
  // The id finished, so using it again is not a duplicate.
  s.send({ type: 'subscribe', id: 'q1', payload: { query: '{ viewer { role } }' } });
  assert.equal((await s.next(5000, 'second next')).type, 'next');
  assert.deepEqual(await s.next(5000, 'second complete'), { type: 'complete', id: 'q1' });
  assert.equal(s.closeInfo, null, 'still open');
});
