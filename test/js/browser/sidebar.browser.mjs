// Remote control of headless Chromium for server/examples_test.go, which
// tests the example agent sidebar (server/examples) in a real browser.
//
// Not a *.test.mjs file, so `node --test` (cmd/deskbridge TestNodeClients)
// leaves it alone: it needs a gateway with a connected, synced org and a Go
// test that changes tickets while the page is open, which only the Go test
// sets up. The Go test keeps every assertion; this script only opens pages
// and reports what they show.
//
// Environment:
//   DESKBRIDGE_URL  base URL the pages are opened from, e.g. http://127.0.0.1:PORT
//   CHROMIUM        the browser to drive (default /usr/bin/chromium); no
//                   browser is ever downloaded
//
// Protocol: one JSON command per line on stdin, one JSON answer per line on
// stdout ({"ok": true, ...} or {"ok": false, "error": "..."}):
//   {"cmd": "open", "name": "admin", "fragment": "token=...&ticket=..."}
//       opens the sidebar in a new tab and waits until it has loaded (or
//       failed); answers with a snapshot
//   {"cmd": "snapshot", "name": "admin"}
//       answers with what the tab shows now
//   {"cmd": "screenshot", "name": "admin", "path": "/tmp/admin.png"}
//       saves a full-page PNG of the tab (for a person to look at)
//   {"cmd": "quit"}
//       closes the browser and exits 0
// A snapshot is the rendered DOM (panels, counts, live state and log), whether
// the page is still the document first opened (a reload would fail that),
// the tab's storage, and the problems seen so far: uncaught exceptions and
// console errors (Content-Security-Policy violations land there).

import { createInterface } from 'node:readline';
import { launchChromium } from './chromium.mjs';

const base = (process.env.DESKBRIDGE_URL || '').replace(/\/+$/, '');
if (!base) {
  console.error('DESKBRIDGE_URL is not set: run this through server/examples_test.go');
  process.exit(2);
}

const browser = await launchChromium();

const tabs = new Map(); // name -> { page, problems }

// MARK is set on the page's window once it has loaded; a reload or a
// navigation to another document loses it.
const MARK = 'same-document';

async function open(name, fragment) {
  if (tabs.has(name)) {
    throw new Error(`tab ${name} is already open`);
  }
  const page = await browser.newPage();
  page.setDefaultTimeout(60000);
  const problems = [];
  tabs.set(name, { page, problems });
  page.on('pageerror', (err) => problems.push(`uncaught: ${err.message}`));
  page.on('console', (msg) => {
    if (msg.type() === 'error' || msg.type() === 'warn') {
      problems.push(`console.${msg.type()}: ${msg.text()}`);
    }
  });
  // The browser reports CSP violations on the console already; this event
  // also names the directive, which makes a failure readable.
  await page.evaluateOnNewDocument(() => {
    document.addEventListener('securitypolicyviolation', (e) => {
      console.error(`Content Security Policy violation: ${e.violatedDirective} blocked ${e.blockedURI || 'inline code'}`);
    });
  });
  await page.goto(`${base}/examples/sidebar#${fragment}`, { waitUntil: 'load' });
  await page.waitForFunction(
    () => ['loaded', 'error'].includes(document.getElementById('sidebar').dataset.state),
    { timeout: 60000, polling: 50 },
  );
  await page.evaluate((mark) => {
    window.__sidebarTest = mark;
  }, MARK);
  return snapshot(name);
}

async function snapshot(name) {
  const tab = tabs.get(name);
  if (!tab) {
    throw new Error(`no tab ${name}`);
  }
  const view = await tab.page.evaluate((mark) => {
    const q = (s) => document.querySelector(s);
    const text = (s) => (q(s) ? q(s).textContent.trim() : '');
    const panel = (id) => {
      const p = document.getElementById(id);
      return {
        state: p.dataset.state || '',
        note: text(`#${id} .note`),
        items: [...p.querySelectorAll('li')].map((li) => ({
          id: li.dataset.deskId || li.dataset.id || '',
          text: li.textContent.trim(),
          status: li.querySelector('.status') ? li.querySelector('.status').textContent.trim() : '',
        })),
      };
    };
    const root = document.getElementById('sidebar');
    const current = document.getElementById('current-ticket');
    const liveSection = document.getElementById('live');
    const counts = {};
    for (const dd of document.querySelectorAll('#counts dd')) {
      counts[dd.dataset.count] = Number(dd.textContent);
    }
    const session = {};
    for (let i = 0; i < sessionStorage.length; i++) {
      session[sessionStorage.key(i)] = sessionStorage.getItem(sessionStorage.key(i));
    }
    const local = {};
    for (let i = 0; i < localStorage.length; i++) {
      local[localStorage.key(i)] = localStorage.getItem(localStorage.key(i));
    }
    return {
      url: location.href,
      sameDocument: window.__sidebarTest === mark,
      state: root.dataset.state || '',
      status: text('#status'),
      refreshes: Number(root.dataset.refreshes || 0),
      name: text('#customer-name'),
      meta: text('#customer-meta'),
      note: text('#customer-note'),
      ticket: {
        deskId: current.dataset.deskId || '',
        status: text('#ticket-status'),
        subject: text('#ticket-subject'),
        shown: !current.hidden,
      },
      // The page itself has no <img>: one would come from data rendered as
      // markup.
      images: document.querySelectorAll('img').length,
      counts,
      countsState: document.getElementById('panel-counts').dataset.state || '',
      panels: {
        tickets: panel('panel-tickets'),
        deals: panel('panel-deals'),
        notes: panel('panel-notes'),
        activities: panel('panel-activities'),
      },
      live: {
        state: liveSection.dataset.state || '',
        text: text('#live-state'),
        lastEventId: liveSection.dataset.lastEventId || '',
        log: [...document.querySelectorAll('#live-log li')].map((li) => li.textContent.trim()),
      },
      bodyText: document.body.innerText,
      sessionStorage: session,
      localStorage: local,
      cookies: document.cookie,
    };
  }, MARK);
  return { ...view, problems: [...tab.problems] };
}

async function handle(command) {
  switch (command.cmd) {
    case 'open':
      return { ok: true, snapshot: await open(command.name, command.fragment) };
    case 'snapshot':
      return { ok: true, snapshot: await snapshot(command.name) };
    case 'screenshot':
      await tabs.get(command.name).page.screenshot({ path: command.path, fullPage: true });
      return { ok: true };
    case 'quit':
      await browser.close();
      return { ok: true, quit: true };
    default:
      throw new Error(`unknown command ${JSON.stringify(command.cmd)}`);
  }
}

const lines = createInterface({ input: process.stdin, crlfDelay: Infinity });
for await (const line of lines) {
  if (!line.trim()) {
    continue;
  }
  let answer;
  try {
    answer = await handle(JSON.parse(line));
  } catch (err) {
    answer = { ok: false, error: String(err && err.stack ? err.stack : err) };
  }
  process.stdout.write(JSON.stringify(answer) + '\n');
  if (answer.quit) {
    process.exit(0);
  }
}
// stdin closed without quit: the Go test is gone; do not leave Chromium behind.
await browser.close();
process.exit(1);
