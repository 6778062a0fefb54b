#!/usr/bin/env node
// Accessibility check of idp's pages (RGAA 4 / WCAG 2.1 AA, automatable part).
//
//   node check.mjs BASE_URL PAGE...          pages given on the command line
//   node check.mjs BASE_URL --pages FILE     pages from a JSON file
//
// A PAGE is a path ("/cas/login") or, in the JSON file, an object:
//   { "name": "…", "path": "/cas/login?profile=eleve-parent",
//     "login": { "username": "…", "password": "…" },  // fill the form, submit
//     "keyboard": true,                                 // Tab-order check
//     "status": 404,                                    // expected HTTP status
//     "then": "/gestion/",                              // after login, open this path
//     "upload": { "field": "#fichier", "name": "f.csv", "content": "…" },
//                                                       // then choose this file
//     "submit": "Réinitialiser" }                       // then press this button
//                                                       // (or these, one per page)
// A "login" step opens `path`, types the credentials with the keyboard and
// presses CONNEXION; the page that answers is the one checked, or the page
// at "then" (whose status is the one compared), or the page answering the
// button named by "submit" (the last one, when several are pressed in
// turn). An "upload" puts a file in the field first; "{unique}" in its
// content becomes a new value at each page view, so that a file imported
// at one viewport is new again at the next.
//
// Each page is checked at a phone viewport (360x640) and at desktop
// (1280x800): axe-core rules tagged wcag2a, wcag2aa, wcag21a, wcag21aa, and
// <html lang="fr">, a non-empty <title>, exactly one <h1>, an accessible
// name for every visible input/select/textarea, no horizontal scrolling
// (at the viewport width, and at 320 px for the phone). With "keyboard":
// Tab reaches Identifiant, Mot de passe, then CONNEXION, each with a visible
// focus indicator. Exits 1 on any violation; what axe cannot decide is
// printed as "needs review" without failing.
//
// A11Y_SCREENSHOTS=DIR saves a full-page PNG of each page view there.
//
// Browser: Debian's /usr/bin/chromium (or $CHROMIUM), never a downloaded one.

import { readFileSync, existsSync } from 'node:fs';
import { createRequire } from 'node:module';
import { chromium } from 'playwright-core';
import { AxeBuilder } from '@axe-core/playwright';

const require = createRequire(import.meta.url);
// @axe-core/playwright 4.13 pins axe-core ~4.13 for itself: hand it ours.
const axeSource = readFileSync(require.resolve('axe-core/axe.min.js'), 'utf8');
const axeVersion = require('axe-core/package.json').version;

const TAGS = ['wcag2a', 'wcag2aa', 'wcag21a', 'wcag21aa'];
const VIEWPORTS = [
  { name: 'phone 360x640', viewport: { width: 360, height: 640 }, isMobile: true, hasTouch: true },
  { name: 'desktop 1280x800', viewport: { width: 1280, height: 800 }, isMobile: false, hasTouch: false },
];
const CHROMIUM_ARGS = [
  '--headless',
  '--no-sandbox',
  '--disable-gpu',
  '--disable-quic',
  '--no-first-run',
  '--disable-background-networking',
  '--disable-component-update',
  '--disable-sync',
];

function usage(message) {
  if (message) console.error(`check.mjs: ${message}`);
  console.error('usage: node check.mjs BASE_URL (PAGE... | --pages FILE.json)');
  process.exit(2);
}

function parseArgs(argv) {
  const [base, ...rest] = argv;
  if (!base || !/^https?:\/\//.test(base)) usage('BASE_URL (http://…) first');
  let pages = [];
  for (let i = 0; i < rest.length; i++) {
    if (rest[i] === '--pages') {
      const file = rest[++i];
      if (!file) usage('--pages needs a file');
      const list = JSON.parse(readFileSync(file, 'utf8'));
      if (!Array.isArray(list)) usage(`${file}: a JSON array is expected`);
      pages.push(...list);
    } else {
      pages.push(rest[i]);
    }
  }
  pages = pages.map((p) => (typeof p === 'string' ? { path: p } : p));
  if (pages.length === 0) usage('no page to check');
  for (const p of pages) {
    if (typeof p.path !== 'string' || !p.path.startsWith('/')) usage(`bad page ${JSON.stringify(p)}`);
    p.name ??= p.path;
  }
  return { base: base.replace(/\/$/, ''), pages };
}

// Checks axe does not make, or makes only as "best practice" (outside the
// WCAG tags): run in the page.
async function pageChecks(page, width) {
  return page.evaluate((width) => {
    const problems = [];
    // WCAG 1.4.10 (reflow): no horizontal scrolling at the viewport width.
    // (`width` is the device's: a page without a viewport meta lays out
    // wider than the phone, which counts as overflow.)
    const overflow = document.documentElement.scrollWidth - width;
    if (overflow > 1) {
      const wide = [...document.body.querySelectorAll('*')]
        .filter((el) => el.getBoundingClientRect().right > width + 1)
        .slice(0, 3)
        .map((el) => el.tagName.toLowerCase() + (el.className && typeof el.className === 'string' ? '.' + el.className.trim().split(/\s+/).join('.') : ''));
      problems.push({ id: 'reflow', target: wide.join(', ') || 'html', help: `content is ${overflow}px wider than the ${width}px viewport (horizontal scrolling, WCAG 1.4.10)` });
    }
    const lang = document.documentElement.getAttribute('lang');
    if (lang !== 'fr') problems.push({ id: 'html-lang-fr', target: 'html', help: `<html lang="fr"> expected, found lang=${JSON.stringify(lang)}` });
    if (!document.title || !document.title.trim()) problems.push({ id: 'title-non-empty', target: 'title', help: 'the page needs a non-empty <title>' });
    const h1 = document.querySelectorAll('h1');
    if (h1.length !== 1) problems.push({ id: 'single-h1', target: 'h1', help: `exactly one <h1> expected, found ${h1.length}` });
    const visible = (el) => {
      const style = getComputedStyle(el);
      if (style.display === 'none' || style.visibility === 'hidden') return false;
      const r = el.getBoundingClientRect();
      return r.width > 0 && r.height > 0;
    };
    const describe = (el) => {
      let s = el.tagName.toLowerCase();
      if (el.id) s += `#${el.id}`;
      else if (el.name) s += `[name="${el.name}"]`;
      return s;
    };
    for (const el of document.querySelectorAll('input, select, textarea')) {
      const type = (el.getAttribute('type') || '').toLowerCase();
      if (['hidden', 'submit', 'reset', 'button', 'image'].includes(type)) continue;
      if (!visible(el)) continue;
      const byLabel = [...(el.labels || [])].some((l) => l.textContent.trim() !== '');
      const byAria =
        (el.getAttribute('aria-label') || '').trim() !== '' ||
        (el.getAttribute('aria-labelledby') || '')
          .split(/\s+/)
          .filter(Boolean)
          .some((id) => (document.getElementById(id)?.textContent || '').trim() !== '');
      const byTitle = (el.getAttribute('title') || '').trim() !== '';
      if (!byLabel && !byAria && !byTitle) {
        problems.push({ id: 'field-label', target: describe(el), help: 'a visible form field without an accessible label' });
      } else if (!byLabel && !byAria) {
        // RGAA 11.1: a title alone is accepted, but say so.
        problems.push({ id: 'field-label', target: describe(el), help: 'a form field labelled by its title attribute only (use <label>)' });
      }
    }
    return problems;
  }, width);
}

// Tab from the top of the page: Identifiant, then Mot de passe, then the
// CONNEXION button must come in that order (other controls may sit between).
async function keyboardCheck(page) {
  const problems = [];
  const wanted = [
    { what: 'Identifiant', match: (f) => f.tag === 'input' && f.label === 'Identifiant' },
    { what: 'Mot de passe', match: (f) => f.tag === 'input' && f.label === 'Mot de passe' },
    { what: 'CONNEXION', match: (f) => f.tag === 'button' && f.text === 'CONNEXION' && f.type === 'submit' },
  ];
  // Called right after the page loaded: focus starts at the top.
  const order = [];
  for (let i = 0; i < 40; i++) {
    await page.keyboard.press('Tab');
    const f = await page.evaluate(() => {
      const el = document.activeElement;
      if (!el || el === document.body) return null;
      const outline = getComputedStyle(el).outlineStyle;
      return {
        tag: el.tagName.toLowerCase(),
        type: (el.getAttribute('type') || '').toLowerCase(),
        label: [...(el.labels || [])].map((l) => l.textContent.trim()).join(' '),
        text: (el.textContent || '').trim(),
        id: el.id,
        outline,
        boxShadow: getComputedStyle(el).boxShadow,
      };
    });
    if (!f) break;
    order.push(f);
    if (wanted[2].match(f)) break;
  }
  let at = 0;
  const seen = order.map((f) => f.label || f.text || f.id || f.tag);
  for (const f of order) {
    if (at < wanted.length && wanted[at].match(f)) {
      // WCAG 2.4.7: the focused control shows where the focus is.
      if (f.outline === 'none' && (f.boxShadow === 'none' || !f.boxShadow)) {
        problems.push({ id: 'keyboard-focus-visible', target: wanted[at].what, help: 'no visible focus indicator (outline or box-shadow) on focus' });
      }
      at++;
    }
  }
  if (at < wanted.length) {
    problems.push({
      id: 'keyboard-tab-order',
      target: 'form',
      help: `Tab order should reach Identifiant, Mot de passe, then CONNEXION; ${wanted[at].what} not reached in order. Tab went through: ${seen.join(' → ')}`,
    });
  }
  return { problems, order: seen };
}

async function login(page, creds) {
  await page.locator('#username').focus();
  await page.keyboard.type(creds.username);
  await page.locator('#password').focus();
  await page.keyboard.type(creds.password);
  await Promise.all([
    page.waitForNavigation({ waitUntil: 'load' }),
    page.getByRole('button', { name: 'CONNEXION' }).click(),
  ]);
}

function printViolation(v) {
  console.log(`  ✗ ${v.id} [${v.impact ?? 'n/a'}] ${v.help}${v.helpUrl ? ` (${v.helpUrl})` : ''}`);
  for (const node of v.nodes ?? [{ target: [v.target] }]) {
    const target = Array.isArray(node.target) ? node.target.join(' ') : String(node.target);
    console.log(`      target: ${target}`);
    if (node.failureSummary) {
      for (const line of node.failureSummary.split('\n')) console.log(`        ${line}`);
    }
  }
}

async function main() {
  const { base, pages } = parseArgs(process.argv.slice(2));
  const executablePath = process.env.CHROMIUM || '/usr/bin/chromium';
  if (!existsSync(executablePath)) {
    console.error(`check.mjs: ${executablePath} not found (apt-get install chromium)`);
    process.exit(3);
  }
  const started = Date.now();
  const browser = await chromium.launch({ executablePath, args: CHROMIUM_ARGS, headless: true });
  console.log(`axe-core ${axeVersion}, Chromium ${browser.version()}, tags ${TAGS.join(', ')}`);
  let failures = 0;
  let checked = 0;
  let uploads = 0;
  try {
    for (const vp of VIEWPORTS) {
      for (const p of pages) {
        // A fresh context (no cookie) per page: a login does not change
        // what the next page shows.
        const context = await browser.newContext({
          viewport: vp.viewport,
          isMobile: vp.isMobile,
          hasTouch: vp.hasTouch,
          locale: 'fr-FR',
        });
        const page = await context.newPage();
        const label = `${p.name} @ ${vp.name}`;
        const problems = [];
        const notes = [];
        let summary = '';
        try {
          const response = await page.goto(base + p.path, { waitUntil: 'load' });
          if (p.keyboard) {
            const k = await keyboardCheck(page);
            problems.push(...k.problems);
            notes.push(`tab order: ${k.order.join(' → ')}`);
          }
          let status = response?.status();
          if (p.login) {
            await login(page, p.login);
            status = undefined;
          }
          if (p.then) {
            status = (await page.goto(base + p.then, { waitUntil: 'load' }))?.status();
          }
          if (p.upload) {
            const content = p.upload.content.replaceAll('{unique}', `${Date.now().toString(36)}${++uploads}`);
            await page.locator(p.upload.field).setInputFiles({
              name: p.upload.name,
              mimeType: 'text/csv',
              buffer: Buffer.from(content, 'utf8'),
            });
          }
          for (const button of [p.submit ?? []].flat()) {
            await Promise.all([
              page.waitForNavigation({ waitUntil: 'load' }),
              page.getByRole('button', { name: button, exact: true }).click(),
            ]);
            status = undefined;
          }
          if (p.status !== undefined && status !== undefined && status !== p.status) {
            problems.push({ id: 'http-status', target: p.path, help: `HTTP ${p.status} expected, got ${status}` });
          }
          if (p.expect) {
            const found = await page.locator(p.expect).count();
            if (found === 0) problems.push({ id: 'expected-element', target: p.expect, help: `the page should show ${p.expect} (url ${page.url()})` });
          }
          const results = await new AxeBuilder({ page, axeSource }).withTags(TAGS).analyze();
          problems.push(...results.violations);
          problems.push(...(await pageChecks(page, vp.viewport.width)));
          // What axe could not decide (e.g. contrast over an image): shown,
          // to be looked at by a person, not counted as failures.
          for (const v of results.incomplete) {
            notes.push(`needs review: ${v.id} (${v.help}) on ${v.nodes.map((n) => n.target.join(' ')).join(', ')}`);
          }
          if (vp.isMobile) {
            // WCAG 1.4.10 asks for no horizontal scrolling at 320 CSS px:
            // narrower than the phone viewport, old phones are that size.
            await page.setViewportSize({ width: 320, height: 568 });
            problems.push(...(await pageChecks(page, 320)).filter((x) => x.id === 'reflow'));
            await page.setViewportSize(vp.viewport);
          }
          const title = await page.title();
          summary = `${status ?? 'after login'} ${new URL(page.url()).pathname} "${title}"`;
          if (process.env.A11Y_SCREENSHOTS) {
            const file = `${p.name}-${vp.viewport.width}x${vp.viewport.height}.png`.replace(/[^\p{L}\p{N}.-]+/gu, '_');
            await page.screenshot({ path: `${process.env.A11Y_SCREENSHOTS}/${file}`, fullPage: true });
          }
          checked++;
        } catch (e) {
          problems.push({ id: 'page-error', target: p.path, help: String(e?.message ?? e).split('\n')[0] });
        } finally {
          await context.close();
        }
        if (problems.length) {
          failures += problems.length;
          console.log(`✗ ${label}: ${problems.length} violation(s) — ${summary}`);
          problems.forEach(printViolation);
        } else {
          console.log(`✓ ${label} — ${summary}`);
        }
        for (const n of notes) console.log(`    ${n}`);
      }
    }
  } finally {
    await browser.close();
  }
  const seconds = ((Date.now() - started) / 1000).toFixed(1);
  console.log(`${checked} page views checked in ${seconds}s, ${failures} violation(s)`);
  process.exit(failures ? 1 : 0);
}

main().catch((e) => {
  console.error(e);
  process.exit(2);
});
