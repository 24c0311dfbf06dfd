#!/usr/bin/env node
// A web login (authorization code grant) the way a person does it, in a real
// headless Chromium driven by playwright-core.
//
//   node authorize-browser.mjs AUTHORIZATION_URL [USERNAME]
//
// Opens the URL, signs in on oidc-provider's dev login page as USERNAME
// (default "alice", any password), confirms the consent page, and lets
// Chromium follow the provider's redirect to the URL's redirect_uri (the CLI's
// loopback listener). Prints the text of the page the listener answered on
// stdout. Requests to any origin other than the provider's and the
// redirect_uri's are aborted. Exit status 0 when the listener's page was
// reached; otherwise a message on stderr and status 1.

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
  console.error('usage: node authorize-browser.mjs AUTHORIZATION_URL [USERNAME]');
  process.exit(2);
}
const target = new URL(url);
const redirect = new URL(target.searchParams.get('redirect_uri') || 'http://invalid/');
if (!LOOPBACK.has(target.hostname) || !LOOPBACK.has(redirect.hostname)) {
  console.error(`authorize-browser: refusing non-loopback URL ${url}`);
  process.exit(2);
}
const timeoutMs = Number(process.env.APPROVE_TIMEOUT_MS || 45000);
const log = (msg) => console.error(`authorize-browser: ${msg}`);

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

const userDataDir = mkdtempSync(join(tmpdir(), 'vault-authorize-chromium-'));
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
    if (host === target.host || host === redirect.host) return route.continue();
    return route.abort();
  });
  const page = context.pages()[0] || await context.newPage();
  page.setDefaultTimeout(timeoutMs);
  const deadline = Date.now() + timeoutMs;
  const onCallback = () => {
    const here = new URL(page.url());
    return here.host === redirect.host && here.pathname === redirect.pathname;
  };

  log(`opening ${target.origin}${target.pathname}`);
  await page.goto(url, { waitUntil: 'domcontentloaded' });
  while (!onCallback()) {
    if (Date.now() > deadline) throw new Error('timed out before reaching the redirect_uri');
    await page.waitForLoadState('domcontentloaded');
    if (onCallback()) break;
    if (await page.locator('input[name="prompt"][value="login"]').count()) {
      log(`signing in as ${username}`);
      await page.locator('input[name="login"]').fill(username);
      await page.locator('input[name="password"]').fill('any-password');
      await page.locator('button[type="submit"]').first().click();
      await waitGone(page, 'input[name="prompt"][value="login"]', deadline);
    } else if (await page.locator('input[name="prompt"][value="consent"]').count()) {
      log('granting consent');
      await page.locator('form:has(input[name="prompt"][value="consent"]) button[type="submit"]').click();
      await waitGone(page, 'input[name="prompt"][value="consent"]', deadline);
    } else {
      await page.waitForTimeout(100);
    }
  }
  await page.waitForLoadState('domcontentloaded');
  log('the redirect_uri answered');
  process.stdout.write(`${await page.locator('body').innerText()}\n`);
  status = 0;
} catch (err) {
  console.error(`authorize-browser: ${err && err.stack ? err.stack : err}`);
} finally {
  if (context) await context.close().catch(() => {});
  rmSync(userDataDir, { recursive: true, force: true });
}
process.exit(status);
