// Apollo Client 3 against the gateway, wired the way its docs tell a
// frontend to: an ApolloClient with an InMemoryCache and a link that
// split()s subscriptions onto GraphQLWsLink (over the npm graphql-ws client,
// i.e. the graphql-transport-ws subprotocol) and sends queries and mutations
// through HttpLink. Here in Node, `ws` is the WebSocket implementation and
// Node's fetch is HttpLink's.
//
// Two things a Node user of Apollo 3 has to know, both visible below:
// - Import from '@apollo/client/core/index.js', not '@apollo/client': the
//   package root also loads Apollo's React bindings, which require `react`
//   (not installed here), and Apollo 3 has no "exports" map, so the
//   directory import '@apollo/client/core' fails in ESM.
// - GraphQLWsLink's error handler reads the global `WebSocket` (for
//   WebSocket.CLOSED) whenever the server answers a subscribe with an `error`
//   message (e.g. a validation error). Node 20 has no global WebSocket, so
//   without the line after the imports the subscriber gets
//   "ReferenceError: WebSocket is not defined" instead of the GraphQL errors
//   (apollographql/apollo-client#11761, workaround from #11063).

import { test, after } from 'node:test';
import assert from 'node:assert/strict';
import { ApolloClient, ApolloError, HttpLink, InMemoryCache, gql, split } from '@apollo/client/core/index.js';
import { GraphQLWsLink } from '@apollo/client/link/subscriptions/index.js';
import { getMainDefinition } from '@apollo/client/utilities/index.js';
import { createClient } from 'graphql-ws';
import {
  env,
  WebSocket,
  sleep,
  unique,
  waitFor,
  withTimeout,
  gqlData,
  eventPos,
  primeSubscription,
  resultQueue,
} from './helpers.mjs';

globalThis.WebSocket ??= WebSocket;

const VIEWER = gql`
  query Viewer {
    viewer {
      role
      org { id slug }
      user { id name }
      token { id name role }
    }
  }
`;

const CREATE_TOKEN = gql`
  mutation CreateToken($input: CreateApiTokenInput!) {
    createApiToken(input: $input) { token { id name role revokedAt } secret }
  }
`;

const TOKEN_EVENTS = gql`
  subscription TokenEvents($after: ID) {
    events(after: $after, types: [TOKEN_CREATED]) { id type subjectId payload }
  }
`;

const EVENTS_PAGE = gql`
  query EventsAfter($after: String) {
    events(first: 500, after: $after, types: [TOKEN_CREATED]) { edges { node { id type subjectId } } }
  }
`;

// Every client is disposed here too, so a failed assertion never leaves a
// socket that keeps node running.
const apollos = new Set();
after(async () => {
  for (const a of apollos) await a.dispose().catch(() => {});
});

/**
 * An ApolloClient for token with the split link. wsOptions go to graphql-ws's
 * createClient (its defaults otherwise: lazy, 5 retries). rec counts what the
 * graphql-ws client did: connection attempts, acks and every close.
 */
function makeApollo(token, wsOptions = {}) {
  const rec = { connecting: 0, connected: 0, closed: [] };
  const wsClient = createClient({
    url: env.wsUrl,
    webSocketImpl: WebSocket,
    connectionParams: { Authorization: `Bearer ${token}` },
    on: {
      connecting: () => rec.connecting++,
      connected: () => rec.connected++,
      closed: (event) => rec.closed.push({ code: event?.code, reason: event?.reason }),
    },
    ...wsOptions,
  });
  const httpLink = new HttpLink({ uri: env.httpUrl, headers: { authorization: `Bearer ${token}` } });
  const link = split(
    ({ query }) => {
      const def = getMainDefinition(query);
      return def.kind === 'OperationDefinition' && def.operation === 'subscription';
    },
    new GraphQLWsLink(wsClient),
    httpLink,
  );
  const client = new ApolloClient({ link, cache: new InMemoryCache() });
  const a = {
    client,
    wsClient,
    rec,
    async dispose() {
      apollos.delete(a);
      client.stop();
      await withTimeout(Promise.resolve(wsClient.dispose()), 2000, 'graphql-ws client dispose');
    },
  };
  apollos.add(a);
  return a;
}

/** Subscribes to an Apollo observable and queues its results (see resultQueue). */
function watch(observable) {
  const q = resultQueue();
  const subscription = observable.subscribe(q.sink);
  q.unsubscribe = () => subscription.unsubscribe();
  return q;
}

/** The row id inside a global id (documented as base64 of `Type:rowid`). */
function rowId(globalId, type) {
  const m = /^([A-Za-z]+):(\d+)$/.exec(Buffer.from(globalId, 'base64').toString('utf8'));
  assert.ok(m && m[1] === type, `${globalId} is the global id of a ${type}`);
  return Number(m[2]);
}

/** Drops Apollo's __typename fields, to compare with a plain HTTP answer. */
function withoutTypename(value) {
  if (Array.isArray(value)) return value.map(withoutTypename);
  if (value && typeof value === 'object') {
    return Object.fromEntries(Object.entries(value).filter(([k]) => k !== '__typename').map(([k, v]) => [k, withoutTypename(v)]));
  }
  return value;
}

async function createWithApollo(client, { name = unique('apollo'), role = 'AGENT' } = {}) {
  const res = await client.mutate({ mutation: CREATE_TOKEN, variables: { input: { name, role, userName: 'e2e-apollo' } } });
  assert.equal(res.errors, undefined, JSON.stringify(res.errors));
  const payload = res.data.createApiToken;
  assert.equal(payload.token.name, name);
  assert.equal(payload.token.role, role);
  assert.equal(payload.token.revokedAt, null);
  assert.ok(typeof payload.secret === 'string' && payload.secret.length > 0, 'a secret came back');
  return payload;
}

// ---------------------------------------------------------------------------

test('apollo: a query goes over HTTP (no WebSocket opened), equals the raw answer and is normalized into the cache', async () => {
  const a = makeApollo(env.adminToken);
  try {
    const res = await a.client.query({ query: VIEWER });
    assert.equal(res.error, undefined);
    const v = res.data.viewer;
    assert.equal(v.__typename, 'Viewer', 'Apollo added __typename and the server answered it');
    assert.equal(v.role, 'ADMIN');
    assert.equal(v.org.slug, 'acme');
    assert.equal(v.token.role, 'ADMIN');
    // The same as a plain POST of the same selection.
    const raw = await gqlData(env.adminToken, '{ viewer { role org { id slug } user { id name } token { id name role } } }');
    assert.deepEqual(withoutTypename(res.data), raw);
    // InMemoryCache normalized the objects by __typename and id.
    const cache = a.client.cache.extract();
    assert.equal(cache[`Org:${v.org.id}`]?.slug, 'acme', 'Org is in the cache under its id');
    assert.equal(cache[`ApiToken:${v.token.id}`]?.name, v.token.name, 'ApiToken is in the cache under its id');
    assert.deepEqual(a.client.readQuery({ query: VIEWER }), res.data, 'the query is answered from the cache');
    // split() kept the query off the WebSocket: the lazy graphql-ws client never connected.
    assert.equal(a.rec.connecting, 0, 'no WebSocket for a query');
  } finally {
    await a.dispose();
  }
});

test('apollo: a subscription receives the TOKEN_CREATED event of a createApiToken mutation made through the same client', async () => {
  const a = makeApollo(env.adminToken);
  try {
    const { data } = await a.client.query({ query: VIEWER });
    const sub = watch(a.client.subscribe({ query: TOKEN_EVENTS }));
    await waitFor(() => a.rec.connected, 5000, 'connection_ack');
    // The server registers a live subscription asynchronously; wait until it delivers.
    await primeSubscription(env.adminToken, (ms) => sub.nextEvent(ms));

    const name = unique('apollo-sub');
    const created = await createWithApollo(a.client, { name, role: 'LIGHT_AGENT' });
    const ev = await sub.eventFor(created.token.id, 5000);

    assert.equal(ev.__typename, 'Event');
    assert.equal(ev.type, 'TOKEN_CREATED');
    assert.equal(ev.subjectId, created.token.id, 'subjectId is the created token');
    eventPos(ev.id);
    assert.equal(typeof ev.payload, 'object', `payload is a JSON object: ${JSON.stringify(ev.payload)}`);
    assert.equal(ev.payload.name, name, 'payload names the token');
    assert.equal(String(ev.payload.role).toUpperCase(), 'LIGHT_AGENT', 'payload has the role');
    assert.equal(ev.payload.tokenId, rowId(created.token.id, 'ApiToken'), 'payload.tokenId is the token');
    assert.equal(ev.payload.actorTokenId, rowId(data.viewer.token.id, 'ApiToken'), 'payload.actorTokenId is the caller');
    assert.ok(!JSON.stringify(ev).includes(created.secret), 'the event never carries the secret');
    for (const r of sub.all) assert.equal(r.data?.events?.type, 'TOKEN_CREATED', `filtered by type: ${JSON.stringify(r)}`);

    // Apollo wrote the subscription result into its cache as Event:<id>.
    assert.equal(a.client.cache.extract()[`Event:${ev.id}`]?.subjectId, created.token.id, 'the event is normalized in the cache');

    assert.equal(sub.state.error, undefined);
    assert.equal(sub.state.completed, false, 'the subscription is still open');
    assert.equal(a.rec.connecting, 1, 'one WebSocket connection');
    assert.deepEqual(a.rec.closed, [], 'no close while subscribed');
    sub.unsubscribe();
  } finally {
    await a.dispose();
  }
});

test('apollo: resubscribing with after: X replays exactly the events after X, in order, then continues live', async () => {
  const a = makeApollo(env.adminToken);
  try {
    // Phase 1: three events seen live; X is the first one.
    const mine = [];
    const first = watch(a.client.subscribe({ query: TOKEN_EVENTS }));
    await waitFor(() => a.rec.connected, 5000, 'connection_ack');
    await primeSubscription(env.adminToken, (ms) => first.nextEvent(ms));
    for (let i = 0; i < 3; i++) {
      const created = await createWithApollo(a.client, { name: unique(`apollo-resume${i}`) });
      const ev = await first.eventFor(created.token.id, 5000);
      mine.push({ tokenId: created.token.id, eventId: ev.id });
    }
    const x = mine[0].eventId;
    first.unsubscribe();

    // Phase 2: one more while nobody is subscribed.
    const offline = await createWithApollo(a.client, { name: unique('apollo-offline') });
    mine.push({ tokenId: offline.token.id });

    // What follows X according to the events query (over HTTP, bypassing the cache).
    const page = await a.client.query({ query: EVENTS_PAGE, variables: { after: x }, fetchPolicy: 'network-only' });
    const listed = page.data.events.edges.map(({ node }) => ({ id: node.id, type: node.type, subjectId: node.subjectId }));
    // Nothing else creates acme tokens meanwhile (TestNodeClients runs the
    // files one at a time), so that is exactly our three later tokens.
    const later = mine.slice(1).map((m) => m.tokenId);
    assert.deepEqual(listed.map((e) => e.subjectId), later, 'events(after: X) lists the three later tokens in creation order');

    // Phase 3: resubscribe with after: X.
    const replay = watch(a.client.subscribe({ query: TOKEN_EVENTS, variables: { after: x } }));
    const received = [];
    const deadline = Date.now() + 10_000;
    while (received.length < listed.length) {
      received.push(await replay.nextEvent(Math.max(1, deadline - Date.now()), `replayed event ${received.length + 1} of ${listed.length}`));
    }
    assert.deepEqual(
      received.map((e) => ({ id: e.id, type: e.type, subjectId: e.subjectId })),
      listed,
      'the replay is exactly events(after: X), in the same order',
    );
    const ids = received.map((e) => e.id);
    assert.ok(!ids.includes(x), 'X itself is not replayed');
    assert.ok(eventPos(ids[0]) > eventPos(x), `the first replayed id ${ids[0]} follows X=${x}`);
    for (let i = 1; i < ids.length; i++) {
      assert.ok(eventPos(ids[i]) > eventPos(ids[i - 1]), `ids increase: ${ids[i - 1]} then ${ids[i]}`);
    }
    for (const m of mine.slice(1, 3)) {
      assert.equal(received.find((e) => e.subjectId === m.tokenId)?.id, m.eventId, 'a replayed id equals the id seen live');
    }

    // Then live on the same subscription, with nothing repeated in between.
    const live = await createWithApollo(a.client, { name: unique('apollo-live') });
    const liveEv = await replay.eventFor(live.token.id, 5000);
    assert.ok(eventPos(liveEv.id) > eventPos(ids[ids.length - 1]), 'the live event follows the replay');
    const seen = replay.all.map((r) => r.data.events.id);
    assert.equal(new Set(seen).size, seen.length, `no event twice: ${seen.join(',')}`);
    assert.equal(replay.state.error, undefined);
    replay.unsubscribe();
  } finally {
    await a.dispose();
  }
});

test('apollo: GraphQL errors of a subscription reject its observable with an ApolloError; the connection stays', async () => {
  const a = makeApollo(env.adminToken);
  try {
    // A live subscription holds the (lazy) connection open throughout.
    const ok = watch(a.client.subscribe({ query: TOKEN_EVENTS }));
    await waitFor(() => a.rec.connected, 5000, 'connection_ack');
    await primeSubscription(env.adminToken, (ms) => ok.nextEvent(ms));

    // A resolver error: the server sends next with errors, then complete.
    const badAfter = watch(a.client.subscribe({ query: gql`subscription { events(after: "not-an-id") { id } }` }));
    await waitFor(() => badAfter.state.error !== undefined, 5000, 'the subscription to fail');
    assert.ok(badAfter.state.error instanceof ApolloError, `an ApolloError: ${badAfter.state.error}`);
    assert.equal(badAfter.state.error.graphQLErrors[0]?.extensions?.code, 'BAD_USER_INPUT');
    assert.equal(badAfter.state.error.graphQLErrors[0]?.extensions?.argument, 'after');

    // A validation error: the server sends the protocol's error message.
    const invalid = watch(a.client.subscribe({ query: gql`subscription { events { nope } }` }));
    await waitFor(() => invalid.state.error !== undefined, 5000, 'the invalid subscription to fail');
    assert.ok(invalid.state.error instanceof ApolloError, `an ApolloError, not ${invalid.state.error}`);
    assert.equal(invalid.state.error.graphQLErrors[0]?.extensions?.code, 'GRAPHQL_VALIDATION_FAILED');
    assert.match(invalid.state.error.graphQLErrors[0].message, /nope/);

    // Neither closed the connection or disturbed the live subscription on it.
    const created = await createWithApollo(a.client, { name: unique('apollo-after-errors') });
    const ev = await ok.eventFor(created.token.id, 5000);
    assert.equal(ev.type, 'TOKEN_CREATED');
    assert.equal(ok.state.error, undefined);
    assert.deepEqual(a.rec.closed, [], 'operation errors do not close the connection');
    assert.equal(a.rec.connecting, 1, 'all on one connection');
    ok.unsubscribe();
  } finally {
    await a.dispose();
  }
});

test('apollo: a bad token makes the subscription fail with a 4403 error, promptly, and the query fail UNAUTHENTICATED', async () => {
  const bad = `dbk_invalid_${unique('apollo')}`;
  const a = makeApollo(bad, { retryAttempts: 0 });
  try {
    const start = Date.now();
    const sub = watch(a.client.subscribe({ query: TOKEN_EVENTS }));
    await waitFor(() => sub.state.error !== undefined || sub.state.completed, 5000, 'the subscription to fail');
    const err = sub.state.error;
    assert.ok(err instanceof Error, `the observable errored: ${err}`);
    assert.match(err.message, /4403/, `the error names the 4403 close: ${err.message}`);
    assert.ok(!err.message.includes(bad), 'the error does not echo the token');
    assert.ok(Date.now() - start < 5000, 'it failed within 5 s');
    assert.equal(sub.all.length, 0, 'no result before the error');
    assert.equal(a.rec.connected, 0, 'never acked');
    assert.deepEqual(a.rec.closed.map((c) => c.code), [4403]);

    // Over HTTP the same token gets a GraphQL error, which Apollo rejects with.
    await assert.rejects(a.client.query({ query: VIEWER }), (e) => {
      assert.ok(e instanceof ApolloError, `an ApolloError: ${e}`);
      assert.equal(e.graphQLErrors[0]?.extensions?.code, 'UNAUTHENTICATED');
      return true;
    });
  } finally {
    await a.dispose();
  }
});

test("apollo: with graphql-ws's default retry count a bad token still ends in an error, after every attempt is closed 4403", async (t) => {
  // graphql-ws retries 4403 (Forbidden) by default, 5 times with exponential
  // backoff (about a minute in all); the wait is shortened here, the count is not.
  const a = makeApollo(`dbk_invalid_${unique('apollo-retry')}`, { retryWait: () => sleep(50) });
  try {
    const sub = watch(a.client.subscribe({ query: TOKEN_EVENTS }));
    await waitFor(() => sub.state.error !== undefined || sub.state.completed, 15_000, 'the subscription to fail');
    t.diagnostic(`attempts: ${a.rec.connecting}, closes: ${a.rec.closed.map((c) => c.code).join(',')}`);
    assert.equal(sub.state.completed, false, 'errored, not completed');
    assert.match(String(sub.state.error?.message), /4403/);
    assert.equal(a.rec.connecting, 6, 'the first attempt and 5 retries');
    assert.deepEqual(a.rec.closed.map((c) => c.code), Array(6).fill(4403), 'each attempt closed 4403');
    assert.equal(a.rec.connected, 0, 'never acked');
    await sleep(300);
    assert.equal(a.rec.connecting, 6, 'no attempt after the error');
  } finally {
    await a.dispose();
  }
});
