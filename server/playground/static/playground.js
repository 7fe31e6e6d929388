// Starts GraphiQL for the deskbridge gateway.
//
// This lives in its own file rather than inline in the page so that the
// page's Content-Security-Policy can forbid inline scripts altogether. It
// expects React, ReactDOM and GraphiQL (UMD builds) to be loaded first.
//
// What it adds to a stock GraphiQL:
//   - a bearer token passed as #token=... in the URL fills the headers
//     editor with {"Authorization": "Bearer ..."}; a fragment never reaches
//     the server, and the token is removed from the address bar once read;
//   - the headers editor survives reloads (in localStorage);
//   - ?query=, ?variables= and ?operationName= prefill the editors, so a
//     link can carry a ready-to-run operation;
//   - a fetcher that POSTs queries and mutations and runs subscriptions
//     over graphql-transport-ws, one WebSocket per subscription.
(() => {
  'use strict';

  const container = document.getElementById('graphiql');
  const endpoint = container.dataset.endpoint;

  // GraphiQL's dialogs use react-remove-scroll, which injects a <style>
  // element and copies the global __webpack_nonce__ onto it. The page's CSP
  // admits only styles carrying this script's nonce, so hand it over.
  const nonce = document.currentScript && document.currentScript.nonce;
  if (nonce) {
    window.__webpack_nonce__ = nonce;
  }

  // takeToken returns the token from a "#token=..." fragment, or null, and
  // removes it from the address bar so it is not left on screen, in the
  // history entry or in a copied link. The fragment is split by hand
  // because URLSearchParams would turn a "+" in a base64 token into a space.
  function takeToken() {
    const parts = location.hash.slice(1).split('&');
    const i = parts.findIndex((part) => part.startsWith('token='));
    if (i < 0) {
      return null;
    }
    const raw = parts[i].slice('token='.length);
    parts.splice(i, 1);
    const rest = parts.filter(Boolean).join('&');
    history.replaceState(history.state, '',
      location.pathname + location.search + (rest ? '#' + rest : ''));
    try {
      return decodeURIComponent(raw);
    } catch {
      return raw; // not percent-encoded after all
    }
  }

  // ---- queries and mutations: GraphQL over HTTP ----------------------------

  // errorResult turns a transport failure into a GraphQL-shaped result, so
  // GraphiQL shows a readable message instead of a stack trace.
  function errorResult(message, extensions) {
    return { errors: [{ message, extensions }] };
  }

  async function post(params, headers) {
    let response;
    try {
      response = await fetch(endpoint, {
        method: 'POST',
        headers: {
          'Content-Type': 'application/json',
          Accept: 'application/graphql-response+json, application/json',
          ...headers,
        },
        body: JSON.stringify(params),
        credentials: 'same-origin',
      });
    } catch (err) {
      return errorResult(`request to ${endpoint} failed: ${err.message}`);
    }
    const text = await response.text();
    try {
      return JSON.parse(text);
    } catch {
      // Not a GraphQL response at all, e.g. a proxy's error page.
      return errorResult(`${endpoint} answered ${response.status} ${response.statusText}`,
        { status: response.status, body: text.slice(0, 1000) });
    }
  }

  // ---- subscriptions: graphql-transport-ws ---------------------------------
  //
  // The protocol (github.com/enisdenjo/graphql-ws, PROTOCOL.md) is small
  // enough to speak directly. Each subscription gets its own WebSocket: the
  // playground runs one operation at a time, so sharing a connection would
  // only add bookkeeping, and a fresh connection picks up edited headers.

  // Close codes the protocol defines, in words a person can act on.
  const closeReasons = {
    1006: 'connection failed or was cut (is the endpoint reachable, and does it accept WebSockets?)',
    4400: 'the server rejected a message as invalid',
    4401: 'unauthorized: subscribed before the connection was acknowledged',
    4403: 'authentication failed',
    4406: 'the server does not speak graphql-transport-ws',
    4408: 'connection initialisation timed out',
    4409: 'a subscription with this id already exists',
    4429: 'too many initialisation requests',
    4500: 'internal server error',
  };

  function websocketURL() {
    const url = new URL(endpoint, location.href);
    url.protocol = url.protocol === 'https:' ? 'wss:' : 'ws:';
    return url.href;
  }

  // subscribe returns an Observable-like object, which GraphiQL 4 accepts
  // from a fetcher (as it does an AsyncIterable). An Observable is used
  // because unsubscribe() maps directly onto closing the operation, which
  // GraphiQL calls when the user presses stop.
  function subscribe(params, headers) {
    return {
      subscribe(sinkOrNext, error, complete) {
        const sink = typeof sinkOrNext === 'function'
          ? { next: sinkOrNext, error: error || (() => {}), complete: complete || (() => {}) }
          : sinkOrNext;
        return { unsubscribe: runSubscription(params, headers, sink) };
      },
    };
  }

  // runSubscription opens the WebSocket, forwards results to sink and
  // returns the function that cancels the subscription.
  function runSubscription(params, headers, sink) {
    const id = '1'; // unique on this connection, which carries one operation
    const ws = new WebSocket(websocketURL(), 'graphql-transport-ws');
    let subscribed = false;
    let done = false;

    const send = (message) => ws.send(JSON.stringify(message));

    // finish ends the operation once: with an error if one is given, as
    // complete otherwise.
    const finish = (err) => {
      if (done) {
        return;
      }
      done = true;
      if (ws.readyState === WebSocket.CONNECTING || ws.readyState === WebSocket.OPEN) {
        ws.close(1000, 'Normal Closure');
      }
      if (err) {
        sink.error(err);
      } else {
        sink.complete();
      }
    };

    ws.onopen = () => {
      // The server cannot read HTTP headers set by a browser's WebSocket, so
      // the headers editor's object (Authorization and all) travels as the
      // connection_init payload instead.
      send({ type: 'connection_init', payload: headers });
    };

    ws.onmessage = (event) => {
      let message;
      try {
        message = JSON.parse(event.data);
      } catch {
        finish({ message: 'the server sent a message that is not JSON' });
        return;
      }
      switch (message.type) {
        case 'connection_ack':
          send({ id, type: 'subscribe', payload: params });
          subscribed = true;
          break;
        case 'ping':
          send({ type: 'pong' });
          break;
        case 'pong':
          break;
        case 'next':
          if (message.id === id) {
            sink.next(message.payload);
          }
          break;
        case 'error':
          // The payload is a list of GraphQL errors, which GraphiQL
          // shows as {"errors": [...]}.
          if (message.id === id) {
            finish(Array.isArray(message.payload) ? message.payload : [message.payload]);
          }
          break;
        case 'complete':
          if (message.id === id) {
            finish();
          }
          break;
        default:
          finish({ message: `the server sent an unexpected message of type ${JSON.stringify(message.type)}` });
      }
    };

    // A WebSocket error event carries no detail; the close event that
    // always follows it has the code and reason.
    ws.onclose = (event) => {
      if (done) {
        return;
      }
      const meaning = closeReasons[event.code] || 'the server closed the connection';
      finish({
        message: `subscription ended: ${meaning} (close code ${event.code}${event.reason ? ': ' + event.reason : ''})`,
        extensions: { closeCode: event.code, closeReason: event.reason },
      });
    };

    return () => {
      if (done) {
        return;
      }
      done = true;
      if (subscribed && ws.readyState === WebSocket.OPEN) {
        send({ id, type: 'complete' });
      }
      ws.close(1000, 'Normal Closure');
    };
  }

  // ---- the fetcher GraphiQL calls ------------------------------------------

  // isSubscription reports whether the operation GraphiQL is about to run is
  // a subscription, using the document GraphiQL has already parsed. Without
  // one (the schema introspection query) the operation goes over HTTP.
  function isSubscription(params, documentAST) {
    if (!documentAST) {
      return false;
    }
    const operations = documentAST.definitions.filter((d) => d.kind === 'OperationDefinition');
    const operation = params.operationName
      ? operations.find((d) => d.name && d.name.value === params.operationName)
      : operations.length === 1 ? operations[0] : undefined;
    return Boolean(operation) && operation.operation === 'subscription';
  }

  // currentHeaders mirrors the headers editor's text. GraphiQL passes the
  // parsed editor contents as opts.headers, except for the schema
  // introspection it runs while mounting, before the editor exists; that
  // request still needs the token when the gateway protects introspection.
  let currentHeaders = '';

  function parseHeaders(text) {
    try {
      const value = JSON.parse(text);
      return value && typeof value === 'object' && !Array.isArray(value) ? value : {};
    } catch {
      return {};
    }
  }

  function fetcher(params, opts) {
    const headers = (opts && opts.headers) || parseHeaders(currentHeaders);
    if (isSubscription(params, opts && opts.documentAST)) {
      return subscribe(params, headers);
    }
    return post(params, headers);
  }

  // ---- start ---------------------------------------------------------------

  // GraphiQL 4.1 is meant to keep the headers editor in localStorage when
  // shouldPersistHeaders is set, but it overwrites the stored value with ""
  // while mounting, so headers (and a token) would be gone after a reload.
  // The page therefore keeps the active tab's headers under a key of its
  // own and passes them back in; GraphiQL still stores each tab's headers
  // with the tab. The key is in GraphiQL's "graphiql:" namespace so that
  // its "Clear data" setting forgets the token too. Headers are always
  // persisted, so GraphiQL's toggle for that, which would not survive a
  // reload either, is hidden.
  const headersKey = 'graphiql:deskbridge-headers';
  const storage = {
    get(key) {
      try {
        return localStorage.getItem(key);
      } catch {
        return null; // storage disabled: nothing persists, all else works
      }
    },
    set(key, value) {
      try {
        localStorage.setItem(key, value);
      } catch {
        // as above
      }
    },
  };

  const props = {
    fetcher,
    shouldPersistHeaders: true,
    showPersistHeadersSettings: false,
    onEditHeaders: (value) => {
      currentHeaders = value;
      storage.set(headersKey, value);
    },
  };

  const search = new URLSearchParams(location.search);
  for (const name of ['query', 'variables', 'operationName']) {
    if (search.has(name)) {
      props[name] = search.get(name);
    }
  }

  const saved = storage.get(headersKey);
  if (saved !== null) {
    props.headers = currentHeaders = saved;
  }

  // applyToken moves a #token=... into the headers editor; it reports
  // whether there was one.
  function applyToken() {
    const token = takeToken();
    if (token === null) {
      return false;
    }
    props.headers = currentHeaders = JSON.stringify({ Authorization: `Bearer ${token}` }, null, 2);
    props.defaultEditorToolsVisibility = 'headers';
    storage.set(headersKey, props.headers);
    return true;
  }

  const root = ReactDOM.createRoot(container);
  const render = () => root.render(React.createElement(GraphiQL, props));
  applyToken();
  render();
  // A #token= link opened in a tab that already shows the playground only
  // changes the fragment; GraphiQL replaces the headers editor's contents
  // whenever the headers prop changes.
  window.addEventListener('hashchange', () => {
    if (applyToken()) {
      render();
    }
  });
})();
