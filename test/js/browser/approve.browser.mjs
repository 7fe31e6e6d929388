// Headless Chromium through the CRM admin's approval (SPEC A2), for
// server/access_test.go: open the approval page, press its button, sign in
// on the sandbox's Zoho consent page as APPROVER_EMAIL and accept, and
// print one JSON line with what each page showed and the problems seen
// (uncaught exceptions, console errors: CSP violations land there). The Go
// test keeps every assertion.
//
// Environment:
//   APPROVAL_URL    the approval page (requestCrmAccess's approvalUrl)
//   APPROVER_EMAIL  who signs in at the consent page
//   CHROMIUM        the browser to drive; none is ever downloaded

import { launchChromium } from './chromium.mjs';

const browser = await launchChromium();
const out = { problems: [] };
try {
  const page = await browser.newPage();
  page.on('pageerror', (e) => out.problems.push('exception: ' + e.message));
  page.on('console', (m) => {
    // Chromium asks every site for /favicon.ico; neither side has one.
    if (m.type() === 'error' && !(m.location().url || '').endsWith('/favicon.ico')) {
      out.problems.push('console: ' + m.text() + ' at ' + (m.location().url || '?'));
    }
  });
  await page.goto(process.env.APPROVAL_URL, { waitUntil: 'load' });
  out.approvalTitle = await page.$eval('h1', (h) => h.textContent);
  await Promise.all([page.waitForNavigation({ waitUntil: 'load' }), page.click('#approve')]);
  out.consentURL = page.url();
  await page.$eval('#email', (e) => { e.value = ''; });
  await page.type('#email', process.env.APPROVER_EMAIL);
  await Promise.all([page.waitForNavigation({ waitUntil: 'load' }), page.click('#accept')]);
  out.finalURL = page.url();
  out.finalTitle = await page.$eval('h1', (h) => h.textContent);
  out.done = await page.$eval('#done', (d) => d.textContent).catch(() => '');
} catch (e) {
  out.error = String(e);
} finally {
  await browser.close();
}
console.log(JSON.stringify(out));
