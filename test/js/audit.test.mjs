// GraphQL over HTTP conformance of /graphql, measured with graphql-http's own
// audit suite (the reference implementation of the graphql-over-http spec).
// One test per audit: a MUST audit that fails (status "error") fails its
// test; SHOULD and MAY audits that fail ("warn", "notice") pass but print
// their reason as a diagnostic, and the last test prints a summary.
//
// The audits run as an authenticated client, as every real caller of the
// gateway is: their fetch adds the admin token's Authorization header (the
// audits never set that header themselves).

import { test } from 'node:test';
import assert from 'node:assert/strict';
import { serverAudits } from 'graphql-http';
import { env } from './helpers.mjs';

function authorizedFetch(input, init = {}) {
  const headers = new Headers(init.headers ?? (input instanceof Request ? input.headers : undefined));
  headers.set('authorization', `Bearer ${env.adminToken}`);
  return fetch(input, { ...init, headers, signal: AbortSignal.timeout(10_000) });
}

const audits = serverAudits({ url: env.httpUrl, fetchFn: authorizedFetch });
const results = [];

// A MUST audit is reported as "error" when it fails, SHOULD as "warn", MAY as "notice".
for (const audit of audits) {
  test(`${audit.id} ${audit.name}`, async (t) => {
    const result = await audit.fn();
    results.push(result);
    assert.equal(result.id, audit.id);
    if (result.status === 'error') {
      assert.fail(`MUST audit failed: ${result.reason}`);
    }
    if (result.status !== 'ok') {
      t.diagnostic(`${result.status.toUpperCase()} ${result.id} ${result.name}: ${result.reason}`);
    }
  });
}

test('audit summary', (t) => {
  const by = { ok: [], warn: [], notice: [], error: [] };
  for (const r of results) by[r.status].push(r.id);
  const line =
    `graphql-http ${audits.length} audits: ${by.ok.length} ok, ${by.warn.length} warn` +
    `${by.warn.length ? ` (${by.warn.join(' ')})` : ''}, ${by.notice.length} notice` +
    `${by.notice.length ? ` (${by.notice.join(' ')})` : ''}, ${by.error.length} error` +
    `${by.error.length ? ` (${by.error.join(' ')})` : ''}`;
  t.diagnostic(line);
  assert.equal(results.length, audits.length, 'every audit ran');
  assert.ok(audits.length > 0, 'graphql-http provided audits');
  assert.deepEqual(by.error, [], 'no MUST audit failed');
});
