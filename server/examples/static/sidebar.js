// The example agent sidebar: a customer's 360 beside a ticket, kept live by
// the gateway's ticketEvents subscription. Plain browser JavaScript against
// the public GraphQL API only, meant to be read and copied: no framework, no
// bundler, no dependency.
//
// What it shows a frontend team:
//   - where the token lives: read from "#token=..." (a fragment never
//     reaches the server) or the form, then kept in memory and in
//     sessionStorage (this tab only, so a reload keeps working); never in
//     local storage, a query string or a cookie;
//   - one POST /graphql for the whole picture, and how to tell a panel the
//     caller's permission profile hides (FORBIDDEN at its path, the rest of
//     the answer intact) from a failure;
//   - a complete graphql-transport-ws client: connection_init carrying the
//     token, subscribe, next/error/complete, ping/pong, reconnecting with
//     backoff, and resuming with `after` so that nothing is lost or repeated
//     across a reconnect;
//   - rendering with textContent only: data from the CRM or the desk never
//     becomes markup.
(() => {
  'use strict';

  const root = document.getElementById('sidebar');
  const endpoint = root.dataset.endpoint;
  const byId = (id) => document.getElementById(id);

  // ---- the API -------------------------------------------------------------

  // One fragment for both entry points. The page sizes are what a sidebar
  // shows; "more" would page with `after`.
  const CUSTOMER = `
fragment SidebarCustomer on Customer {
  crmContact { name email ownerName }
  crmAccount { name }
  customerType
  deals(first: 10) { edges { node { id name stage amount closingAt closed } } }
  notes(first: 5) { edges { node { id title content ownerName createdAt } } }
  activities(first: 10) { edges { node { id kind subject status at closed } } }
  tickets(first: 10) { edges { node { deskId number subject status statusType overdue contact { deskId email } } } }
  ticketCounts { total open onHold resolved unresolved overdue }
}`;

  const BY_TICKET = `query SidebarByTicket($deskId: String!) {
  ticket(deskId: $deskId) {
    deskId number subject status statusType
    contact { deskId name email }
    customer { ...SidebarCustomer }
  }
}` + CUSTOMER;

  const BY_EMAIL = `query SidebarByEmail($email: String!) {
  customerByEmail(email: $email) { ...SidebarCustomer }
}` + CUSTOMER;

  // The subscription asks only for what the log line needs; the panels are
  // read again after each event, which keeps the counts right without
  // re-implementing the server's rules (status types, overdue) here.
  const TICKET_EVENTS = `subscription SidebarTicketEvents($f: TicketEventFilter, $after: ID) {
  ticketEvents(filter: $f, after: $after) {
    id type source ticketDeskId status
    ticket { deskId number subject status }
  }
}`;

  // graphql POSTs an operation with the token and returns {data, errors}.
  // It throws only when there is no GraphQL answer at all (network down, a
  // proxy's error page); a GraphQL answer is returned whatever its HTTP
  // status, because a partial answer (some fields FORBIDDEN) is a success.
  async function graphql(query, variables) {
    const response = await fetch(endpoint, {
      method: 'POST',
      headers: {
        'Content-Type': 'application/json',
        Accept: 'application/graphql-response+json, application/json',
        Authorization: `Bearer ${session.token}`,
      },
      body: JSON.stringify({ query, variables }),
      credentials: 'omit',
      cache: 'no-store',
    });
    const text = await response.text();
    try {
      const body = JSON.parse(text);
      return { data: body.data || null, errors: body.errors || [] };
    } catch {
      throw new Error(`${endpoint} answered ${response.status} ${response.statusText}`);
    }
  }

  // ---- the token and what to show -----------------------------------------

  const TOKEN_KEY = 'deskbridge:sidebar-token';
  const storage = {
    get() {
      try {
        return sessionStorage.getItem(TOKEN_KEY);
      } catch {
        return null; // storage disabled: the token lives in memory only
      }
    },
    set(value) {
      try {
        if (value) {
          sessionStorage.setItem(TOKEN_KEY, value);
        } else {
          sessionStorage.removeItem(TOKEN_KEY);
        }
      } catch {
        // as above
      }
    },
  };

  // session is what the sidebar shows now. gen changes whenever the token or
  // the customer changes, so that answers to an earlier lookup are dropped.
  const session = { token: null, ticket: '', email: '', gen: 0 };

  // readFragment returns the fragment's fields. It is split by hand because
  // URLSearchParams would turn a "+" in a token into a space.
  function readFragment() {
    const out = {};
    for (const part of location.hash.slice(1).split('&')) {
      const i = part.indexOf('=');
      if (i <= 0) {
        continue;
      }
      const raw = part.slice(i + 1);
      try {
        out[part.slice(0, i)] = decodeURIComponent(raw);
      } catch {
        out[part.slice(0, i)] = raw; // not percent-encoded after all
      }
    }
    return out;
  }

  // writeFragment puts what is shown into the address bar, without the
  // token: a reload or a bookmark shows the same customer, and the token is
  // not left on screen, in the history or in a copied link.
  function writeFragment() {
    const parts = [];
    if (session.ticket) {
      parts.push('ticket=' + encodeURIComponent(session.ticket));
    }
    if (session.email) {
      parts.push('email=' + encodeURIComponent(session.email));
    }
    history.replaceState(history.state, '',
      location.pathname + location.search + (parts.length ? '#' + parts.join('&') : ''));
  }

  // setStatus shows a message and the page's state; the lookup form folds
  // away while a customer is shown and opens when there is none.
  function setStatus(text, state) {
    byId('status').textContent = text || '';
    if (state) {
      root.dataset.state = state;
      byId('lookup-box').open = state !== 'loaded' && state !== 'loading';
    }
  }

  // start shows what session names, from scratch.
  function start() {
    session.gen++;
    stopLive();
    refreshes = 0;
    missingRetries = 0;
    byId('live-log').replaceChildren();
    byId('view').hidden = true;
    byId('f-ticket').value = session.ticket;
    byId('f-email').value = session.email;
    byId('f-token').placeholder = session.token ? 'a token is set (leave empty to keep it)' : 'dbk_…';
    writeFragment();
    if (!session.token) {
      setStatus('Enter an API token (or open this page with #token=…).', 'idle');
      setLive('off', 'Not following anything.');
      byId('f-token').focus();
      return;
    }
    if (!session.ticket && !session.email) {
      setStatus('Enter a ticket’s desk id or a customer’s email.', 'idle');
      setLive('off', 'Not following anything.');
      byId('f-ticket').focus();
      return;
    }
    setStatus('Loading…', 'loading');
    refresh();
  }

  function applyFragment() {
    const f = readFragment();
    if (!('token' in f) && !('ticket' in f) && !('email' in f)) {
      return false;
    }
    if (f.token) {
      session.token = f.token;
      storage.set(f.token);
    }
    session.ticket = (f.ticket || '').trim();
    session.email = session.ticket ? '' : (f.email || '').trim();
    return true;
  }

  byId('lookup').addEventListener('submit', (event) => {
    event.preventDefault();
    const input = byId('f-token');
    if (input.value.trim()) {
      session.token = input.value.trim();
      storage.set(session.token);
    }
    // Not left in the DOM, where any later script could read it back.
    input.value = '';
    session.ticket = byId('f-ticket').value.trim();
    session.email = session.ticket ? '' : byId('f-email').value.trim();
    start();
  });

  byId('forget').addEventListener('click', () => {
    session.token = null;
    storage.set(null);
    start();
    setStatus('The token is forgotten.', 'idle');
  });

  // ---- reading and rendering the customer ---------------------------------

  // The customer is read again after every event. Reads never overlap: an
  // event that arrives during one asks for one more afterwards, so a burst of
  // events (a replay after a reconnect) costs two reads, not one per event.
  let reading = null;
  let readAgain = false;
  let refreshes = 0;

  function refresh() {
    if (reading) {
      readAgain = true;
      return;
    }
    reading = load().finally(() => {
      reading = null;
      if (readAgain) {
        readAgain = false;
        refresh();
      }
    });
  }

  async function load() {
    const gen = session.gen;
    const byTicket = Boolean(session.ticket);
    const field = byTicket ? 'ticket' : 'customerByEmail';
    // Before the first read of a customer, note where the event stream
    // stands: following from there misses nothing that happens after the
    // read began (what the read already shows may come again; reading
    // again is harmless).
    let position = null;
    if (!live.contact) {
      try {
        const p = await graphql('query SidebarStreamPosition { eventStreamPosition }', {});
        position = (p.data && p.data.eventStreamPosition) || null;
      } catch {
        position = null; // then the subscription starts live and reads again
      }
    }
    let result;
    try {
      result = byTicket
        ? await graphql(BY_TICKET, { deskId: session.ticket })
        : await graphql(BY_EMAIL, { email: session.email });
    } catch (err) {
      if (gen === session.gen) {
        // Keep what is on screen; the next event or reconnect reads again.
        setStatus(`Could not reach the gateway: ${err.message}`, refreshes ? 'loaded' : 'error');
      }
      return;
    }
    if (gen !== session.gen) {
      return;
    }
    const top = result.data && result.data[field];
    if (!top) {
      byId('view').hidden = true;
      stopLive();
      live.contact = null;
      setLive('off', 'Not following anything.');
      const message = describeMissing(result.errors, field);
      // A ticket the desk just made, or any record while a new connection's
      // first sync is still reading the desk, is not in the gateway's
      // mirror yet: look again for a while before giving up.
      if (isNotFound(result.errors, field) && missingRetries < MISSING_RETRIES) {
        missingRetries++;
        setStatus(`${message} It may not have reached deskbridge yet; looking again in ${MISSING_RETRY_MS / 1000} s…`, 'error');
        setTimeout(() => {
          if (gen === session.gen) {
            refresh();
          }
        }, MISSING_RETRY_MS);
        return;
      }
      setStatus(message, 'error');
      return;
    }
    missingRetries = 0;
    const view = byTicket
      ? { ticket: top, contact: top.contact, customer: top.customer, base: ['ticket', 'customer'] }
      : { ticket: null, contact: null, customer: top, base: ['customerByEmail'] };
    render(view, result.errors);
    refreshes++;
    root.dataset.refreshes = String(refreshes);
    setStatus('', 'loaded');
    followContact(contactToFollow(view), position);
  }

  const MISSING_RETRIES = 12;
  const MISSING_RETRY_MS = 10000;
  let missingRetries = 0;

  // isNotFound reports whether an answer without the ticket or customer
  // means "not there" (null, or NOT_FOUND) rather than a refusal.
  function isNotFound(errors, field) {
    if (errors.length === 0) {
      return true;
    }
    const err = errors.find((e) => samePath(e.path, [field]));
    return Boolean(err && err.extensions && err.extensions.code === 'NOT_FOUND');
  }

  // describeMissing explains an answer without the ticket or customer.
  function describeMissing(errors, field) {
    const err = errors.find((e) => samePath(e.path, [field])) || errors[0];
    const code = err && err.extensions && err.extensions.code;
    switch (code) {
      case undefined: // null without an error: nothing there
      case 'NOT_FOUND':
        return field === 'ticket'
          ? `No ticket with desk id ${session.ticket}.`
          : `No customer has the email ${session.email}.`;
      case 'UNAUTHENTICATED':
        return 'The token was refused: it is unknown, expired or revoked.';
      case 'FORBIDDEN':
        return 'Hidden by your permission profile.';
      default:
        return `The gateway answered ${code}: ${err.message}`;
    }
  }

  function samePath(a, b) {
    return Array.isArray(a) && a.length === b.length && a.every((p, i) => p === b[i]);
  }

  function startsWith(path, prefix) {
    return Array.isArray(path) && path.length >= prefix.length && prefix.every((p, i) => path[i] === p);
  }

  // problemAt sums up the errors at path or below it: whether the
  // permission profile hides something there, and any other failure. The
  // gateway says FORBIDDEN at the hidden field's path and answers the rest,
  // so one hidden panel never blanks the sidebar.
  function problemAt(errors, path) {
    const here = errors.filter((e) => startsWith(e.path, path));
    const code = (e) => e.extensions && e.extensions.code;
    const failed = here.find((e) => code(e) !== 'FORBIDDEN');
    return { forbidden: here.some((e) => code(e) === 'FORBIDDEN'), failed: failed ? failed.message : null };
  }

  const HIDDEN = 'Hidden by your permission profile.';

  function render(view, errors) {
    const c = view.customer;
    const custProblem = problemAt(errors, view.base);
    const at = (name) => (c ? problemAt(errors, [...view.base, name]) : custProblem);

    // Who: the CRM contact's name when the profile shows it, else the desk's.
    const contactProblem = at('crmContact');
    const name = (c && c.crmContact && c.crmContact.name) || (view.contact && view.contact.name) || session.email || 'Unknown customer';
    byId('customer-name').textContent = name;
    const meta = [];
    const email = (c && c.crmContact && c.crmContact.email) || (view.contact && view.contact.email);
    if (email) {
      meta.push(email);
    }
    if (c && c.crmAccount && c.crmAccount.name) {
      meta.push(c.crmAccount.name);
    }
    if (c && c.customerType) {
      meta.push(c.customerType);
    }
    if (c && c.crmContact && c.crmContact.ownerName) {
      meta.push(`owner ${c.crmContact.ownerName}`);
    }
    byId('customer-meta').textContent = meta.join(' · ');
    let note = '';
    if (!c) {
      note = custProblem.forbidden ? `CRM picture: ${HIDDEN.toLowerCase()}` : `The CRM picture could not be read: ${custProblem.failed || 'no answer'}`;
    } else if (contactProblem.forbidden) {
      note = `CRM contact details: ${HIDDEN.toLowerCase()}`;
    } else if (!c.crmContact) {
      note = 'No CRM contact is linked to this customer.';
    }
    byId('customer-note').textContent = note;

    // The ticket the sidebar was opened for.
    const current = byId('current-ticket');
    current.hidden = !view.ticket;
    if (view.ticket) {
      byId('ticket-label').textContent = `#${view.ticket.number || view.ticket.deskId}`;
      setStatusBadge(byId('ticket-status'), view.ticket);
      byId('ticket-subject').textContent = view.ticket.subject || '(no subject)';
      current.dataset.deskId = view.ticket.deskId;
    }

    renderCounts(c ? c.ticketCounts : null, at('ticketCounts'));
    renderList('panel-tickets', c && c.tickets, at('tickets'), ticketItem, 'No tickets.');
    renderList('panel-deals', c && c.deals, at('deals'), dealItem, 'No deals.');
    renderList('panel-notes', c && c.notes, at('notes'), noteItem, 'No notes.');
    renderList('panel-activities', c && c.activities, at('activities'), activityItem, 'No calls, events or tasks.');
    byId('view').hidden = false;
  }

  // renderList fills a panel. A hidden list comes back empty (or null) with
  // FORBIDDEN; a partly hidden one (say, calls hidden but tasks shown) comes
  // back with the rest and the error, and says so under the items.
  function renderList(panelId, connection, problem, item, emptyText) {
    const panel = byId(panelId);
    const list = panel.querySelector('ul');
    const noteEl = panel.querySelector('.note');
    const nodes = connection && connection.edges ? connection.edges.map((e) => e.node) : [];
    list.replaceChildren(...nodes.map(item));
    let state;
    let note = '';
    if (nodes.length === 0 && problem.forbidden) {
      state = 'hidden';
      note = HIDDEN;
    } else if (nodes.length === 0 && (problem.failed || !connection)) {
      state = 'error';
      note = `Could not be read: ${problem.failed || 'no answer'}`;
    } else if (nodes.length === 0) {
      state = 'empty';
      note = emptyText;
    } else {
      state = 'shown';
      if (problem.forbidden) {
        note = 'Some items are hidden by your permission profile.';
      } else if (problem.failed) {
        note = `Some items could not be read: ${problem.failed}`;
      }
    }
    panel.dataset.state = state;
    noteEl.textContent = note;
  }

  function renderCounts(counts, problem) {
    const panel = byId('panel-counts');
    const dl = byId('counts');
    dl.replaceChildren();
    if (!counts) {
      panel.dataset.state = problem.forbidden ? 'hidden' : 'error';
      panel.querySelector('.note').textContent = problem.forbidden ? HIDDEN : `Could not be read: ${problem.failed || 'no answer'}`;
      return;
    }
    for (const [key, label] of [['total', 'total'], ['open', 'open'], ['onHold', 'on hold'], ['resolved', 'resolved'], ['overdue', 'overdue']]) {
      // A <div> may group a <dt> with its <dd>, which lets the CSS lay the
      // counts out in a row.
      const group = el('div', 'count');
      const dd = el('dd', null, counts[key]);
      dd.dataset.count = key;
      group.append(el('dt', null, label), dd);
      dl.append(group);
    }
    panel.dataset.state = 'shown';
    panel.querySelector('.note').textContent = '';
  }

  // el makes an element whose text is set with textContent: whatever the
  // CRM or the desk holds (a subject like "<img onerror=...>") is shown as
  // text, never parsed as markup.
  function el(tag, className, text) {
    const node = document.createElement(tag);
    if (className) {
      node.className = className;
    }
    if (text !== undefined && text !== null) {
      node.textContent = String(text);
    }
    return node;
  }

  function setStatusBadge(node, ticket) {
    node.textContent = ticket.status || 'unknown';
    node.dataset.statusType = ticket.statusType || '';
  }

  function ticketItem(t) {
    const li = el('li');
    li.dataset.deskId = t.deskId;
    const row = el('p', 'row');
    row.append(el('span', 'label', `#${t.number || t.deskId}`));
    const badge = el('span', 'status');
    setStatusBadge(badge, t);
    row.append(badge);
    li.append(row, el('p', null, t.subject || '(no subject)'));
    if (t.overdue) {
      li.append(el('p', 'overdue', 'overdue'));
    }
    return li;
  }

  const money = new Intl.NumberFormat(undefined, { maximumFractionDigits: 2 });

  function date(value) {
    if (!value) {
      return '';
    }
    const d = new Date(value);
    return Number.isNaN(d.getTime()) ? String(value) : d.toLocaleDateString();
  }

  function dealItem(d) {
    const li = el('li');
    li.dataset.id = d.id;
    const row = el('p', 'row');
    row.append(el('span', 'label', d.name || '(unnamed deal)'));
    if (d.amount !== null && d.amount !== undefined) {
      row.append(el('span', null, money.format(d.amount)));
    }
    li.append(row);
    const sub = [d.stage, d.closingAt ? `closing ${date(d.closingAt)}` : ''].filter(Boolean).join(' · ');
    if (sub) {
      li.append(el('p', 'sub', sub));
    }
    return li;
  }

  function noteItem(n) {
    const li = el('li');
    li.dataset.id = n.id;
    li.append(el('p', 'label', n.title || '(untitled)'));
    if (n.content && n.content !== n.title) {
      const text = n.content.length > 160 ? n.content.slice(0, 160) + '…' : n.content;
      li.append(el('p', null, text));
    }
    li.append(el('p', 'sub', [n.ownerName, date(n.createdAt)].filter(Boolean).join(' · ')));
    return li;
  }

  const kinds = { CALL: 'Call', EVENT: 'Meeting', TASK: 'Task' };

  function activityItem(a) {
    const li = el('li');
    li.dataset.id = a.id;
    const row = el('p', 'row');
    row.append(el('span', 'label', a.subject || '(no subject)'));
    row.append(el('span', 'badge', kinds[a.kind] || a.kind));
    li.append(row);
    const done = a.closed && !/complete/i.test(a.status || '') ? 'completed' : '';
    const sub = [a.status, date(a.at), done].filter(Boolean).join(' · ');
    if (sub) {
      li.append(el('p', 'sub', sub));
    }
    return li;
  }

  // contactToFollow is the desk contact whose tickets the live updates
  // follow: the ticket's contact, or for an email the contact of one of the
  // customer's tickets with that email. (A Customer has no desk contact
  // field of its own, so a customer without tickets cannot be followed.)
  function contactToFollow(view) {
    if (view.contact) {
      return view.contact.deskId;
    }
    const tickets = (view.customer && view.customer.tickets && view.customer.tickets.edges) || [];
    const contacts = tickets.map((e) => e.node.contact).filter(Boolean);
    const wanted = session.email.toLowerCase();
    const match = contacts.find((c) => (c.email || '').toLowerCase() === wanted) || contacts[0];
    return match ? match.deskId : null;
  }

  // ---- live updates: graphql-transport-ws ---------------------------------
  //
  // The protocol (github.com/enisdenjo/graphql-ws, PROTOCOL.md) is small
  // enough to speak directly. One WebSocket, one subscription:
  //   client: connection_init {Authorization}   server: connection_ack
  //   client: subscribe {query, variables}      server: next ... (error | complete)
  //   either: ping -> the other answers pong
  // A browser WebSocket cannot send an Authorization header, so the token
  // travels in connection_init's payload.

  const SUBSCRIPTION_ID = 'ticket-events';

  // Close codes after which reconnecting cannot help: the client's own
  // mistakes and a refused token. Everything else (1001 server restarting,
  // 1006 connection cut, 1013 too slow, 4408 init timeout, ...) is retried.
  const FINAL_CLOSES = {
    4400: 'the server rejected a message as invalid',
    4401: 'subscribed before the connection was acknowledged',
    4403: 'the token was refused (unknown, expired or revoked)',
    4406: 'the server does not speak graphql-transport-ws',
    4409: 'a subscription with this id already exists',
    4429: 'too many initialisation requests',
  };

  const CLOSE_MEANINGS = {
    1000: 'closed',
    1001: 'the server is restarting',
    1006: 'the connection was cut',
    1011: 'server error',
    1013: 'the server asked to try again later',
    4408: 'the connection was not initialised in time',
    4500: 'server error',
  };

  // live.gen changes whenever a socket is given up, so that the events of
  // an abandoned socket (its close, a pending reconnect) are ignored.
  const live = { ws: null, gen: 0, attempt: 0, timer: 0, contact: null, lastEventId: null };

  // followContact starts following a desk contact's tickets from the
  // stream position `from` (null: from now on), unless it already follows
  // them.
  function followContact(contactDeskId, from) {
    if (contactDeskId === live.contact && (live.ws || live.timer)) {
      return;
    }
    stopLive();
    live.contact = contactDeskId;
    live.lastEventId = from || null;
    live.attempt = 0;
    delete byId('live').dataset.lastEventId;
    if (!contactDeskId) {
      setLive('off', 'This customer has no desk contact to follow: no live updates.');
      return;
    }
    openSocket();
  }

  function stopLive() {
    live.gen++;
    clearTimeout(live.timer);
    live.timer = 0;
    if (live.ws) {
      const ws = live.ws;
      live.ws = null;
      if (ws.readyState === WebSocket.OPEN) {
        ws.send(JSON.stringify({ id: SUBSCRIPTION_ID, type: 'complete' }));
      }
      ws.close(1000, 'Normal Closure');
    }
  }

  function setLive(state, text) {
    byId('live').dataset.state = state;
    byId('live-state').textContent = text;
  }

  function websocketURL() {
    const url = new URL(endpoint, location.href);
    url.protocol = url.protocol === 'https:' ? 'wss:' : 'ws:';
    return url.href;
  }

  function openSocket() {
    const gen = ++live.gen;
    live.timer = 0;
    setLive('connecting', live.lastEventId ? 'Reconnecting…' : 'Connecting…');
    let ws;
    try {
      ws = new WebSocket(websocketURL(), 'graphql-transport-ws');
    } catch (err) {
      reconnectLater(gen, 1006, err.message);
      return;
    }
    live.ws = ws;
    const send = (message) => ws.send(JSON.stringify(message));

    ws.onopen = () => {
      if (gen === live.gen) {
        send({ type: 'connection_init', payload: { Authorization: `Bearer ${session.token}` } });
      }
    };

    ws.onmessage = (event) => {
      if (gen !== live.gen) {
        return;
      }
      let message;
      try {
        message = JSON.parse(event.data);
      } catch {
        ws.close(4400, 'Invalid message');
        return;
      }
      switch (message.type) {
        case 'connection_ack':
          live.attempt = 0;
          // `after` is the last event this page saw: the server first
          // replays what followed it (in order, none twice), then goes on
          // live. null the first time: live only.
          send({
            id: SUBSCRIPTION_ID,
            type: 'subscribe',
            payload: { query: TICKET_EVENTS, variables: { f: { contactDeskId: live.contact }, after: live.lastEventId } },
          });
          setLive('live', 'Live: following this customer’s tickets.');
          // Without an event id to resume from, a change made before this
          // subscription started (after the first read, or during an outage
          // before any event arrived) can only be caught by reading again.
          if (live.lastEventId === null) {
            refresh();
          }
          break;
        case 'ping':
          send({ type: 'pong' });
          break;
        case 'pong':
          break;
        case 'next':
          if (message.id === SUBSCRIPTION_ID) {
            onEvent(message.payload);
          }
          break;
        case 'error':
          // The server refused the operation itself (a bad `after`, say):
          // subscribing again would be refused again.
          if (message.id === SUBSCRIPTION_ID) {
            const errors = Array.isArray(message.payload) ? message.payload : [message.payload];
            stopLive();
            setLive('stopped', `Live updates stopped: ${errors.map((e) => e && e.message).join('; ')}`);
          }
          break;
        case 'complete':
          // The server ended the stream; it never does while it runs, so
          // come back as after a restart.
          if (message.id === SUBSCRIPTION_ID) {
            live.gen++;
            live.ws = null;
            ws.close(1000, 'Normal Closure');
            reconnectLater(live.gen, 1000, 'the server ended the subscription');
          }
          break;
        default:
          ws.close(4400, 'Unexpected message');
      }
    };

    // An error event carries no detail; the close event that always follows
    // it has the code.
    ws.onclose = (event) => {
      if (gen !== live.gen) {
        return;
      }
      live.ws = null;
      if (FINAL_CLOSES[event.code]) {
        setLive('stopped', `Live updates stopped: ${FINAL_CLOSES[event.code]} (close code ${event.code}).`);
        return;
      }
      reconnectLater(gen, event.code, event.reason);
    };
  }

  // reconnectLater waits with exponential backoff and jitter (0.5 s, 1 s,
  // 2 s ... up to 30 s, each somewhere between half and all of that), so
  // that a restarted gateway is not met by every sidebar at the same
  // instant.
  function reconnectLater(gen, code, reason) {
    if (gen !== live.gen) {
      return;
    }
    let delay = Math.min(30000, 500 * 2 ** live.attempt) * (0.5 + Math.random() / 2);
    live.attempt = Math.min(live.attempt + 1, 10);
    if (code === 1013) {
      // "Try Again Later": this client fell behind; give the server room.
      delay = Math.max(delay, 2000);
    }
    const why = CLOSE_MEANINGS[code] || reason || 'the connection closed';
    setLive('reconnecting', `Disconnected (${why}, close code ${code}); reconnecting in ${Math.ceil(delay / 1000)} s…`);
    live.timer = setTimeout(() => {
      if (gen === live.gen) {
        openSocket();
      }
    }, delay);
  }

  function onEvent(payload) {
    const event = payload && payload.data && payload.data.ticketEvents;
    if (!event) {
      const errors = (payload && payload.errors) || [];
      addLog(null, `An event could not be read: ${errors.map((e) => e.message).join('; ') || 'empty'}`);
      return;
    }
    live.lastEventId = event.id;
    byId('live').dataset.lastEventId = event.id;
    addLog(event.id, describeEvent(event));
    refresh();
  }

  function describeEvent(e) {
    const t = e.ticket;
    const label = `Ticket #${(t && t.number) || e.ticketDeskId}`;
    const where = e.source === 'DESK' ? ' (in the desk)' : ' (in deskbridge)';
    switch (e.type) {
      case 'STATUS_CHANGED':
        return `${label} status changed to ${e.status}${where}`;
      case 'CREATED':
        return `New ticket #${(t && t.number) || e.ticketDeskId}: ${(t && t.subject) || '(no subject)'}${where}`;
      case 'UPDATED':
        return `${label} was updated${where}`;
      case 'REPLY':
        return `New message on ${label.toLowerCase()}${where}`;
      case 'COMMENT':
        return `New comment on ${label.toLowerCase()}${where}`;
      case 'MERGED':
        return `Tickets were merged into ${label.toLowerCase()}${where}`;
      case 'DELETED':
        return `${label} was deleted${where}`;
      default:
        return `${label}: ${e.type}${where}`;
    }
  }

  const LOG_LINES = 20;

  function addLog(eventId, text) {
    const log = byId('live-log');
    const li = el('li');
    if (eventId) {
      li.dataset.eventId = eventId;
    }
    const now = new Date();
    const time = el('time', null, now.toLocaleTimeString());
    time.dateTime = now.toISOString();
    li.append(time, document.createTextNode(` ${text}`));
    log.prepend(li);
    while (log.children.length > LOG_LINES) {
      log.lastElementChild.remove();
    }
  }

  // ---- start ---------------------------------------------------------------

  session.token = storage.get();
  applyFragment();
  start();
  // A #token=... or #ticket=... link opened in a tab that already shows
  // the sidebar only changes the fragment.
  window.addEventListener('hashchange', () => {
    if (applyFragment()) {
      start();
    }
  });
})();
