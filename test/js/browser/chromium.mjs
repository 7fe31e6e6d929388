// The headless Chromium the Go tests' browser scripts drive
// (sidebar.browser.mjs, approve.browser.mjs). CHROMIUM names the browser;
// none is ever downloaded.

import puppeteer from 'puppeteer-core';

export function launchChromium() {
  return puppeteer.launch({
    executablePath: process.env.CHROMIUM || '/usr/bin/chromium',
    headless: true,
    // --no-sandbox: CI runs as root in a container, where Chromium's sandbox
    // cannot start.
    args: ['--no-sandbox', '--headless=new', '--disable-dev-shm-usage', '--disable-gpu'],
    // Generous: `make test` runs this beside every other test on a small
    // machine. A hang still fails, just later.
    timeout: 120000,
    protocolTimeout: 120000,
  });
}
