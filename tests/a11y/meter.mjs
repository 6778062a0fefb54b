#!/usr/bin/env node
// The password indicator and the form agree, in a real browser.
//
//   node meter.mjs BASE_URL LOGIN PASSWORD TABLE.json
//
// Logs in as LOGIN, then for each password of TABLE (a JSON array of
// strings) opens « Mon compte ENT », types the password into the new
// password field, reads what the aria-live region shows once the server
// answered, then submits the form (current password, new password twice)
// and reads the verdict of the page. Prints one JSON line per password:
// { password, shown, shownAccepted, submittedAccepted, error }.
// The current password follows each accepted change.
//
// Browser: Debian's /usr/bin/chromium (or $CHROMIUM), never a downloaded one.

import { readFileSync } from 'node:fs';
import { chromium } from 'playwright-core';

const [base, login, firstPassword, tableFile] = process.argv.slice(2);
if (!base || !login || !firstPassword || !tableFile) {
  console.error('usage: node meter.mjs BASE_URL LOGIN PASSWORD TABLE.json');
  process.exit(2);
}
const table = JSON.parse(readFileSync(tableFile, 'utf8'));
const browser = await chromium.launch({
  executablePath: process.env.CHROMIUM || '/usr/bin/chromium',
  args: ['--headless', '--no-sandbox', '--disable-gpu', '--no-first-run', '--disable-background-networking'],
});
try {
  const page = await browser.newPage();
  await page.goto(`${base}/cas/login?profile=eleve-parent`);
  await page.fill('#username', login);
  await page.fill('#password', firstPassword);
  await Promise.all([page.waitForNavigation(), page.click('button:has-text("CONNEXION")')]);
  let current = firstPassword;
  for (const password of table) {
    await page.goto(`${base}/compte/`);
    const answered = page.waitForResponse((r) => r.url().endsWith('/compte/force-mot-de-passe'));
    await page.fill('#mot_de_passe', password);
    await answered;
    await page.waitForFunction(() => document.getElementById('force').hasAttribute('data-accepte'));
    const shown = (await page.textContent('#force')).trim();
    const shownAccepted = (await page.getAttribute('#force', 'data-accepte')) === 'oui';
    await page.fill('#mot_de_passe_actuel', current);
    await page.fill('#confirmation', password);
    // A password shorter than the field's minlength never leaves the
    // browser: its own validation refuses it first.
    const valid = await page.$eval('#mot_de_passe', (el) => el.checkValidity());
    if (!valid) {
      console.log(JSON.stringify({ password, shown, shownAccepted, submittedAccepted: false, error: null, browserRefused: true }));
      continue;
    }
    await Promise.all([
      page.waitForNavigation(),
      page.click('form[action="/compte/mot-de-passe"] button[type=submit]'),
    ]);
    const alert = await page.$('#erreur');
    const error = alert ? (await alert.textContent()).trim() : null;
    const submittedAccepted = error === null && page.url().includes('fait=mot-de-passe');
    if (submittedAccepted) current = password;
    console.log(JSON.stringify({ password, shown, shownAccepted, submittedAccepted, error }));
  }
} finally {
  await browser.close();
}
