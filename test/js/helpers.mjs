// Shared helpers of deskbridge's Node end-to-end tests. Not a test file itself
// (node --test only runs *.test.mjs here); the tests import it.
//
// The Go test that starts the gateway passes these variables; a missing one
// fails every test file at import, loudly, instead of skipping:
//   DESKBRIDGE_URL                base URL, e.g. http://127.0.0.1:PORT
//   DESKBRIDGE_ADMIN_TOKEN        bearer secret of an ADMIN token in org "acme"
//   DESKBRIDGE_AGENT_TOKEN        bearer secret of an AGENT token in org "acme"
//   DESKBRIDGE_OTHER_ADMIN_TOKEN  bearer secret of an ADMIN token in org "globex"

import assert from 'node:assert/strict';
import { randomUUID } from 'node:crypto';
import { setTimeout as sleep } from 'node:timers/promises';
import WebSocket from 'ws';

export { sleep, WebSocket };

function required(name) {
  const value = process.env[name];
  if (!value) {
    throw new Error(
      `${name} is not set: these tests need a running deskbridge gateway; run them through the Go e2e test ` +
        `or set DESKBRIDGE_URL, DESKBRIDGE_ADMIN_TOKEN, DESKBRIDGE_AGENT_TOKEN and DESKBRIDGE_OTHER_ADMIN_TOKEN`,
    );
  }
  return value;
}

const base = required('DESKBRIDGE_URL').replace(/\/+$/, '');

export const env = Object.freeze({
  base,
  httpUrl: `${base}/graphql`,
  wsUrl: `${base.replace(/^http/, 'ws')}/graphql`,
  adminToken: required('DESKBRIDGE_ADMIN_TOKEN'),
  agentToken: required('DESKBRIDGE_AGENT_TOKEN'),
  otherAdminToken: required('DESKBRIDGE_OTHER_ADMIN_TOKEN'),
});

/** A short unique suffix so names never collide across runs and files. */
export function unique(prefix) {
  return `${prefix}-${randomUUID().slice(0, 8)}`;
}

/** Rejects with a message naming what was awaited when ms pass first. */
export async function withTimeout(promise, ms, what) {
  let timer;
  const timeout = new Promise((_, reject) => {
    timer = setTimeout(() => reject(new Error(`timed out after ${ms} ms waiting for ${what}`)), ms);
  });
  try {
    return await Promise.race([promise, timeout]);
  } finally {
    clearTimeout(timer);
  }
}

/** Polls cond every 20 ms until it is truthy; throws after ms. */
export async function waitFor(cond, ms, what) {
  const deadline = Date.now() + ms;
  for (;;) {
    const v = cond();
    if (v) return v;
    if (Date.now() > deadline) throw new Error(`timed out after ${ms} ms waiting for ${what}`);
    await sleep(20);
  }
}

// ---------------------------------------------------------------------------
// GraphQL over HTTP

/**
 * POSTs one operation and returns { status, body }. Throws on a non-JSON
 * response so a proxy error page never passes for a GraphQL answer.
 */
export async function gql(token, query, variables) {
  const headers = {
    'content-type': 'application/json',
    accept: 'application/graphql-response+json, application/json;q=0.9',
  };
  if (token) headers.authorization = `Bearer ${token}`;
  const res = await fetch(env.httpUrl, {
    method: 'POST',
    headers,
    body: JSON.stringify({ query, variables }),
    signal: AbortSignal.timeout(10_000),
  });
  const text = await res.text();
  let body;
  try {
    body = JSON.parse(text);
  } catch {
    throw new Error(`POST ${env.httpUrl} answered ${res.status} with non-JSON body: ${text.slice(0, 300)}`);
  }
  return { status: res.status, body };
}

/** Like gql but asserts there are no errors and returns data. */
export async function gqlData(token, query, variables) {
  const { status, body } = await gql(token, query, variables);
  assert.equal(body.errors, undefined, `unexpected errors (HTTP ${status}): ${JSON.stringify(body.errors)}`);
  assert.equal(status, 200, `HTTP status for a successful operation`);
  assert.ok(body.data, 'response has data');
  return body.data;
}

const CREATE_TOKEN = `mutation ($input: CreateApiTokenInput!) {
  createApiToken(input: $input) { token { id name role user { id name } revokedAt } secret }
}`;

/** Creates a token with the admin token over HTTP; returns { token, secret }. */
export async function createToken(adminToken, { name = unique('e2e'), role = 'AGENT', userName = 'e2e-js' } = {}) {
  const data = await gqlData(adminToken, CREATE_TOKEN, { input: { name, role, userName } });
  const payload = data.createApiToken;
  assert.equal(typeof payload.secret, 'string');
  assert.ok(payload.secret.length > 0, 'createApiToken returned a secret');
  assert.equal(typeof payload.token.id, 'string');
  assert.equal(payload.token.name, name, 'created token has the requested name');
  assert.equal(payload.token.role, role, 'created token has the requested role');
  return payload;
}

export async function revokeToken(adminToken, id) {
  const data = await gqlData(adminToken, 'mutation ($id: ID!) { revokeApiToken(id: $id) { id revokedAt } }', { id });
  assert.equal(data.revokeApiToken.id, id);
  assert.ok(data.revokeApiToken.revokedAt, 'revoked token has revokedAt');
  return data.revokeApiToken;
}

// ---------------------------------------------------------------------------
// Raw WebSocket with a message queue

/**
 * Opens a raw `ws` socket. The returned object queues every text message
 * (parsed as JSON when possible) and records the close:
 *   opened             promise: resolves on open, rejects on a handshake error
 *   next(ms, what)     the next message, or throws after ms
 *   expectNone(ms)     asserts nothing arrives for ms
 *   closed             promise of { code, reason } (reason a string)
 *   messages           every message received so far
 *   raw                every raw text frame received so far
 */
export function rawSocket(protocols, { url = env.wsUrl } = {}) {
  const ws = protocols === undefined ? new WebSocket(url) : new WebSocket(url, protocols);
  const queue = [];
  const waiters = [];
  const messages = [];
  const raw = [];
  let closeInfo = null;

  const opened = new Promise((resolve, reject) => {
    ws.once('open', resolve);
    ws.once('error', reject);
  });
  opened.catch(() => {}); // observed by callers that care
  const closed = new Promise((resolve) => {
    ws.once('close', (code, reason) => {
      closeInfo = { code, reason: reason.toString('utf8') };
      resolve(closeInfo);
      for (const w of waiters.splice(0)) w();
    });
  });
  ws.on('error', () => {}); // the close event carries what we assert on
  ws.on('message', (data, isBinary) => {
    const text = isBinary ? Buffer.from(data).toString('utf8') : data.toString('utf8');
    raw.push(text);
    let msg;
    try {
      msg = JSON.parse(text);
    } catch {
      msg = { unparsable: text };
    }
    messages.push(msg);
    queue.push(msg);
    for (const w of waiters.splice(0)) w();
  });

  return {
    ws,
    opened,
    closed,
    messages,
    raw,
    get closeInfo() {
      return closeInfo;
    },
    get protocol() {
      return ws.protocol;
    },
    send(msg) {
      ws.send(typeof msg === 'string' ? msg : JSON.stringify(msg));
    },
    async next(ms = 5000, what = 'a message') {
      const deadline = Date.now() + ms;
      for (;;) {
        if (queue.length) return queue.shift();
        if (closeInfo) {
          throw new Error(`socket closed (${closeInfo.code} ${closeInfo.reason}) while waiting for ${what}`);
        }
        const left = deadline - Date.now();
        if (left <= 0) throw new Error(`timed out after ${ms} ms waiting for ${what}`);
        await new Promise((resolve) => {
          const t = setTimeout(resolve, left);
          waiters.push(() => {
            clearTimeout(t);
            resolve();
          });
        });
      }
    },
    /** Next message that satisfies pred; others are returned in skipped. */
    async nextMatching(pred, ms = 5000, what = 'a matching message', skipped = []) {
      const deadline = Date.now() + ms;
      for (;;) {
        const msg = await this.next(Math.max(1, deadline - Date.now()), what);
        if (pred(msg)) return msg;
        skipped.push(msg);
      }
    },
    async expectNone(ms) {
      await sleep(ms);
      assert.deepEqual(queue, [], `expected no message within ${ms} ms`);
    },
    async waitClosed(ms = 5000, what = 'the server to close the socket') {
      return withTimeout(closed, ms, what);
    },
    /** Closes (or terminates) the socket and waits for the close, bounded. */
    async dispose() {
      if (ws.readyState === WebSocket.CLOSED) return;
      try {
        if (ws.readyState === WebSocket.OPEN) ws.close(1000);
        else ws.terminate();
      } catch {
        ws.terminate();
      }
      try {
        await withTimeout(closed, 2000, 'close');
      } catch {
        ws.terminate();
      }
    },
  };
}

/** Asserts a close has the expected code and a non-empty string reason. */
export function assertClose(info, code, what) {
  assert.ok(info, `${what}: the socket closed`);
  assert.equal(info.code, code, `${what}: close code (reason ${JSON.stringify(info.reason)})`);
  assert.equal(typeof info.reason, 'string');
  assert.ok(info.reason.length > 0, `${what}: close reason is a non-empty string`);
}

// ---------------------------------------------------------------------------
// Event helpers shared by both subscription protocols

export const TOKEN_CREATED_SUB = 'subscription ($after: ID) { events(after: $after, types: [TOKEN_CREATED]) { id type occurredAt subjectId payload } }';

/** Parses an event id as the decimal position it is documented to be. */
export function eventPos(id) {
  assert.match(id, /^\d+$/, `event id ${JSON.stringify(id)} is a decimal position`);
  return BigInt(id);
}

/** Describes a subscription error for a message: a close, GraphQL errors or an Error. */
export function describeError(err) {
  if (Array.isArray(err)) return JSON.stringify(err);
  if (err && typeof err === 'object' && 'code' in err) return `close ${err.code} ${err.reason}`;
  return String(err?.message ?? err);
}

/**
 * Queues the results of one subscription, whichever client runs it: hand
 * `sink` ({ next, error, complete }) to the client's subscribe. Then
 *   next(ms, what)        the next result; throws if the subscription errored
 *                         or completed first, or after ms
 *   nextEvent(ms, what)   data.events of the next result, asserting no errors
 *   eventFor(subjectId)   skips to the event about subjectId
 *   all                   every result received so far
 *   state                 { error, completed }
 */
export function resultQueue() {
  const queue = [];
  const all = [];
  const state = { error: undefined, completed: false };
  let waiter = null;
  const wake = () => {
    if (waiter) waiter();
    waiter = null;
  };
  const q = {
    all,
    state,
    sink: {
      next: (result) => {
        all.push(result);
        queue.push(result);
        wake();
      },
      error: (err) => {
        state.error = err ?? new Error('subscription errored without a reason');
        wake();
      },
      complete: () => {
        state.completed = true;
        wake();
      },
    },
    async next(ms = 5000, what = 'a subscription result') {
      const deadline = Date.now() + ms;
      for (;;) {
        if (queue.length) return queue.shift();
        if (state.error !== undefined) throw new Error(`subscription errored while waiting for ${what}: ${describeError(state.error)}`);
        if (state.completed) throw new Error(`subscription completed while waiting for ${what}`);
        const left = deadline - Date.now();
        if (left <= 0) throw new Error(`timed out after ${ms} ms waiting for ${what}`);
        await new Promise((resolve) => {
          const t = setTimeout(resolve, left);
          waiter = () => {
            clearTimeout(t);
            resolve();
          };
        });
      }
    },
    async nextEvent(ms = 5000, what = 'an event') {
      const result = await q.next(ms, what);
      assert.equal(result.errors, undefined, `subscription result has no errors: ${JSON.stringify(result.errors)}`);
      assert.ok(result.data?.events, `subscription result has data.events: ${JSON.stringify(result)}`);
      return result.data.events;
    },
    async eventFor(subjectId, ms = 5000) {
      const deadline = Date.now() + ms;
      for (;;) {
        const ev = await q.nextEvent(Math.max(1, deadline - Date.now()), `the event about ${subjectId}`);
        if (ev.subjectId === subjectId) return ev;
      }
    },
  };
  return q;
}

/**
 * Makes sure a subscription is live before the test relies on it: the server
 * registers a live-only subscription asynchronously after the subscribe
 * message, so an event caused right after sending it may legitimately be
 * missed. Creates throwaway tokens, one at a time, until the subscription
 * delivers the TOKEN_CREATED event of the latest one; events of earlier
 * throwaway tokens that arrive late are ignored by the caller via the
 * returned set of ids.
 *
 * nextEvent(ms) must return the next event object ({ id, type, subjectId, ... })
 * from the subscription or throw on timeout.
 */
export async function primeSubscription(adminToken, nextEvent, { attempts = 20, wait = 500 } = {}) {
  const primeIds = new Set();
  for (let i = 0; i < attempts; i++) {
    const { token } = await createToken(adminToken, { name: unique('prime') });
    primeIds.add(token.id);
    const deadline = Date.now() + wait;
    for (;;) {
      const left = deadline - Date.now();
      if (left <= 0) break;
      let ev;
      try {
        ev = await nextEvent(left);
      } catch (err) {
        if (/timed out/.test(String(err?.message))) break;
        throw err;
      }
      if (ev.subjectId === token.id) return primeIds;
    }
  }
  throw new Error(`subscription delivered none of ${attempts} TOKEN_CREATED events within ${attempts * wait} ms`);
}
