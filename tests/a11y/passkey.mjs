#!/usr/bin/env node
// A passkey in a real browser: headless Debian Chromium with the DevTools
// WebAuthn virtual authenticator (CTAP2, internal transport, resident keys,
// user verification), driven through idp's own pages and passkey.js.
//
//   node passkey.mjs BASE_URL LOGIN PASSWORD SERVICE
//
// BASE_URL must be http://localhost:PORT (browsers refuse an IP address as
// relying party id; localhost is a secure context over plain HTTP).
// Steps: log in with the password; in « Mon compte » › « Validation en deux
// étapes », name and add a passkey (the recovery codes are shown); log
// out; log in to SERVICE with the password, then « Utiliser ma clé d'accès »
// (the browser lands on SERVICE?ticket=…, answered here without network).
// Then the key is cloned: its signature counter set back to 0; the next
// login with it must be refused on the code page.
// Each page reached is checked with axe-core (WCAG 2.1 AA tags) at a phone
// and a desktop width.
// Prints one JSON line: { ticket, codes, keys, refused, pages, violations }.

import { readFileSync, existsSync } from 'node:fs';
import { createRequire } from 'node:module';
import { chromium } from 'playwright-core';
import { AxeBuilder } from '@axe-core/playwright';

const require = createRequire(import.meta.url);
const axeSource = readFileSync(require.resolve('axe-core/axe.min.js'), 'utf8');
const TAGS = ['wcag2a', 'wcag2aa', 'wcag21a', 'wcag21aa'];

const [base, login, password, service] = process.argv.slice(2);
if (!base || !login || !password || !service) {
  console.error('usage: node passkey.mjs BASE_URL LOGIN PASSWORD SERVICE');
  process.exit(2);
}
const executablePath = process.env.CHROMIUM || '/usr/bin/chromium';
if (!existsSync(executablePath)) {
  console.error(`passkey.mjs: ${executablePath} not found (apt-get install chromium)`);
  process.exit(3);
}

const checked = [];
const violations = [];

// axe-core on the page as it is, at a phone and a desktop width.
async function axe(page, name) {
  for (const viewport of [{ width: 360, height: 640 }, { width: 1280, height: 800 }]) {
    await page.setViewportSize(viewport);
    const results = await new AxeBuilder({ page, axeSource }).withTags(TAGS).analyze();
    for (const v of results.violations) {
      violations.push(`${name} @ ${viewport.width}px: ${v.id} ${v.help} (${v.nodes.map((n) => n.target.join(' ')).join(', ')})`);
    }
  }
  checked.push(name);
}

async function submit(page, button) {
  await Promise.all([
    page.waitForNavigation({ waitUntil: 'load' }),
    page.getByRole('button', { name: button, exact: true }).click(),
  ]);
}

async function passwordStep(page, query) {
  await page.goto(`${base}/cas/login?profile=eleve-parent${query}`, { waitUntil: 'load' });
  await page.locator('#username').fill(login);
  await page.locator('#password').fill(password);
  await submit(page, 'CONNEXION');
}

const browser = await chromium.launch({
  executablePath,
  headless: true,
  args: ['--headless', '--no-sandbox', '--disable-gpu', '--no-first-run', '--disable-background-networking',
    '--disable-component-update', '--disable-sync'],
});
let outcome = {};
try {
  const context = await browser.newContext({ locale: 'fr-FR' });
  const serviceHost = new URL(service).host;
  const page = await context.newPage();
  const cdp = await context.newCDPSession(page);
  await cdp.send('WebAuthn.enable');
  const { authenticatorId } = await cdp.send('WebAuthn.addVirtualAuthenticator', {
    options: {
      protocol: 'ctap2',
      transport: 'internal',
      hasResidentKey: true,
      hasUserVerification: true,
      isUserVerified: true,
      automaticPresenceSimulation: true,
    },
  });

  // Mon compte: add a passkey.
  await passwordStep(page, '');
  await page.goto(`${base}/compte/deux-etapes`, { waitUntil: 'load' });
  await page.locator('#nom_cle').waitFor({ state: 'visible' });
  await axe(page, 'mon compte : ajouter une clé d\'accès');
  await page.locator('#nom_cle').fill('Clé virtuelle');
  await submit(page, 'Ajouter une clé d\'accès');
  const codes = await page.locator('ul.recovery-codes code').allTextContents();
  await axe(page, 'codes de secours (clé d\'accès)');
  await page.getByRole('link', { name: 'Continuer' }).click();
  await page.waitForLoadState('load');
  const keys = await page.locator('ul.passkeys strong').allTextContents();
  await axe(page, 'mon compte : clés d\'accès');
  await page.goto(`${base}/cas/logout`, { waitUntil: 'load' });

  // Login to the service: password, then the passkey.
  const query = `&service=${encodeURIComponent(service)}`;
  await passwordStep(page, query);
  await page.getByRole('button', { name: 'Utiliser ma clé d\'accès' }).waitFor({ state: 'visible' });
  await axe(page, 'code de vérification ou clé d\'accès');
  // The redirect to the service (not reachable from here: the request is
  // enough); then Chromium shows its error page, which must be there
  // before the next navigation.
  const [toService] = await Promise.all([
    page.waitForRequest((request) => new URL(request.url()).host === serviceHost),
    page.waitForEvent('framenavigated', (frame) => frame === page.mainFrame() && frame.url().startsWith('chrome-error:')),
    page.getByRole('button', { name: 'Utiliser ma clé d\'accès' }).click(),
  ]);
  const ticket = new URL(toService.url()).searchParams.get('ticket');
  await page.goto(`${base}/cas/logout`, { waitUntil: 'load' });

  // A clone of the key: its counter back to 0.
  const { credentials } = await cdp.send('WebAuthn.getCredentials', { authenticatorId });
  const counters = credentials.map((c) => c.signCount);
  for (const c of credentials) {
    await cdp.send('WebAuthn.removeCredential', { authenticatorId, credentialId: c.credentialId });
    await cdp.send('WebAuthn.addCredential', { authenticatorId, credential: { ...c, signCount: 0 } });
  }
  await passwordStep(page, query);
  await submit(page, 'Utiliser ma clé d\'accès');
  const shown = page.locator('#erreur-cle:not([hidden])');
  const refused = (await shown.count()) ? (await shown.textContent()).trim() : '';
  const refusedAt = new URL(page.url()).pathname;
  await axe(page, 'clé d\'accès refusée');
  outcome = { ticket, codes, keys, counters, refused, refusedAt };
} finally {
  await browser.close();
}
console.log(JSON.stringify({ ...outcome, pages: checked, violations }));
process.exit(violations.length ? 1 : 0);
