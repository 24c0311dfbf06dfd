#!/usr/bin/env node
// Approve a device-flow login the way a person would, in a real headless
// Chromium driven by playwright-core.
//
//   node approve-browser.mjs VERIFICATION_URI_COMPLETE [USERNAME]
//
// Opens the URL (which already carries the user_code), confirms the device,
// signs in on oidc-provider's dev login page as USERNAME (default "alice",
// any password), confirms the consent page and waits for "Sign-in Success".
// Requests to any host other than the verification URI's loopback host are
// aborted, so the page's web-font @import never leaves the machine.
// Exit status 0 on success; otherwise a message on stderr and status 1.
// Progress goes to stderr; stdout stays empty.

import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

process.env.PLAYWRIGHT_SKIP_BROWSER_DOWNLOAD = '1';

const { chromium } = await import('playwright-core');

const CHROMIUM = process.env.VAULT_TEST_CHROMIUM || '/usr/bin/chromium';
const CHROMIUM_ARGS = [
  '--headless',
  '--no-sandbox',
  '--disable-gpu',
  '--disable-background-networking',
  '--disable-component-update',
  '--disable-sync',
  '--no-first-run',
  '--disable-quic',
];
const LOOPBACK = new Set(['127.0.0.1', 'localhost', '[::1]']);

const [url, username = 'alice'] = process.argv.slice(2);
if (!url) {
  console.error('usage: node approve-browser.mjs VERIFICATION_URI_COMPLETE [USERNAME]');
  process.exit(2);
}
const target = new URL(url);
if (!LOOPBACK.has(target.hostname)) {
  console.error(`approve-browser: refusing non-loopback URL ${url}`);
  process.exit(2);
}
const timeoutMs = Number(process.env.APPROVE_TIMEOUT_MS || 45000);
// Wait until no element matches `selector` (the page navigated on). Polls,
// because a navigation in progress makes a query throw now and then.
async function waitGone(page, selector, deadline) {
  while (Date.now() < deadline) {
    try {
      if (await page.locator(selector).count() === 0) return;
    } catch {
      // execution context destroyed by the navigation: try again
    }
    await new Promise((resolve) => { setTimeout(resolve, 50); });
  }
  throw new Error(`timed out waiting for the page to move on from ${selector}`);
}

const log = (msg) => console.error(`approve-browser: ${msg}`);

const userDataDir = mkdtempSync(join(tmpdir(), 'vault-approve-chromium-'));
let context;
let status = 1;
try {
  context = await chromium.launchPersistentContext(userDataDir, {
    executablePath: CHROMIUM,
    headless: true,
    args: CHROMIUM_ARGS,
    timeout: timeoutMs,
  });
  await context.route('**/*', (route) => {
    const host = new URL(route.request().url()).host;
    if (host === target.host) return route.continue();
    return route.abort();
  });

  const page = context.pages()[0] || await context.newPage();
  page.setDefaultTimeout(timeoutMs);
  const deadline = Date.now() + timeoutMs;

  log(`opening ${url}`);
  await page.goto(url, { waitUntil: 'domcontentloaded' });

  // Walk the pages until the success page shows. Each step acts on whatever
  // page is showing: the auto-submitting form_post page, the device confirm
  // page, the login page, the consent page.
  let done = false;
  while (!done) {
    if (Date.now() > deadline) throw new Error('timed out before reaching the success page');
    await page.waitForLoadState('domcontentloaded');
    const title = await page.title();
    const heading = (await page.locator('h1').first().textContent({ timeout: 2000 }).catch(() => '')) || '';

    if (/Sign-in Success/i.test(heading)) {
      log('sign-in success page reached');
      done = true;
    } else if (await page.locator('form#op\\.deviceConfirmForm').count()) {
      log('confirming device');
      await page.locator('button[autofocus][form="op.deviceConfirmForm"]').click();
      await waitGone(page, 'form#op\\.deviceConfirmForm', deadline);
    } else if (await page.locator('input[name="prompt"][value="login"]').count()) {
      log(`signing in as ${username}`);
      await page.locator('input[name="login"]').fill(username);
      await page.locator('input[name="password"]').fill('any-password');
      await page.locator('button[type="submit"]').first().click();
      await waitGone(page, 'input[name="prompt"][value="login"]', deadline);
    } else if (await page.locator('input[name="prompt"][value="consent"]').count()) {
      log('granting consent');
      await page.locator('form:has(input[name="prompt"][value="consent"]) button[type="submit"]').click();
      await waitGone(page, 'input[name="prompt"][value="consent"]', deadline);
    } else if (await page.locator('p.red').count()) {
      throw new Error(`verification page reports: ${(await page.locator('p.red').first().textContent()).trim()}`);
    } else if (/oops|error/i.test(title) || /oops|error/i.test(heading)) {
      throw new Error(`error page: ${(await page.locator('body').innerText()).slice(0, 500)}`);
    } else {
      // e.g. the "Submitting Callback" page that submits itself by script.
      await page.waitForTimeout(100);
    }
  }
  status = 0;
} catch (err) {
  console.error(`approve-browser: ${err && err.stack ? err.stack : err}`);
} finally {
  if (context) await context.close().catch(() => {});
  rmSync(userDataDir, { recursive: true, force: true });
}
process.exit(status);
