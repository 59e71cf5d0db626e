// Drives Debian's chromium (headless, through playwright-core; no browser download) over
// kspan's web UI for tests/integration/ui_test.cc, and prints what the pages show as one
// JSON object on stdout. The test decides what is right; this script only looks.
//
//   node drive.mjs SPEC_JSON
//   SPEC: {"base":"http://127.0.0.1:PORT", "trace":"<trace id>", "spans":N,
//          "service":"<service of the list>", "screenshot":"/path.png",
//          "searches":["service=a&status=error", ...],
//          "form":{"service":"a","status":"error"}}
//   out:  {"listed":[ids on /?service=...], "rows":[{spanId,parentId,depth,service,name,
//          left,width,badges}], "details":"<text of the details panel>",
//          "searches":{"<query>":[ids]}, "form":[ids], "url":"<after the click>",
//          "serviceEdges":[["caller>callee", calls], ...] (the /graph page)}
//
// Bounded: every wait has a timeout, the whole run at most 60 s.
import { chromium } from 'playwright-core';

const spec = JSON.parse(process.argv[2]);
const out = { searches: {} };
const killer = setTimeout(() => { console.error('drive.mjs: 60 s passed'); process.exit(3); }, 60000);

const browser = await chromium.launch({
  executablePath: '/usr/bin/chromium',
  headless: true,
  args: ['--no-sandbox', '--disable-gpu', '--no-first-run', '--disable-dev-shm-usage'],
});
try {
  const page = await browser.newPage({ viewport: { width: 1400, height: 900 } });
  page.setDefaultTimeout(15000);
  const errors = [];
  page.on('pageerror', (e) => errors.push(String(e)));

  // Results of the list for a query string: the trace ids, in order.
  const listFor = async (qs) => {
    await page.goto(`${spec.base}/?${qs}`);
    await page.waitForSelector('#results[data-state="done"]');
    return page.$$eval('#trace-table tr[data-trace-id]', (rows) => rows.map((r) => r.dataset.traceId));
  };

  // 1. The list for the service shows the trace; click it.
  out.listed = await listFor(`service=${encodeURIComponent(spec.service)}`);
  await page.click(`tr[data-trace-id="${spec.trace}"] a.trace-link`);
  await page.waitForFunction((n) => document.querySelectorAll('#waterfall .span-row').length >= n, spec.spans);
  out.url = page.url();
  out.rows = await page.$$eval('#waterfall .span-row', (rows) => rows.map((r) => {
    const bar = r.querySelector('.bar');
    return {
      spanId: r.dataset.spanId,
      parentId: r.dataset.parentId,
      depth: Number(r.dataset.depth),
      service: r.dataset.service,
      name: r.dataset.name,
      indent: parseFloat(r.querySelector('.span-label').style.paddingLeft),
      left: parseFloat(bar.style.left),
      width: parseFloat(bar.style.width),
      badges: [...r.querySelectorAll('.badge')].map((b) => b.textContent),
    };
  }));
  // 2. A span's details: its attributes.
  await page.click('#waterfall .span-row:nth-child(2)');
  await page.waitForSelector('#span-details');
  out.details = await page.textContent('#span-details');
  await page.screenshot({ path: spec.screenshot, fullPage: true });

  // 3. Searches by URL, and one through the form.
  for (const qs of spec.searches || []) out.searches[qs] = await listFor(qs);
  if (spec.form) {
    await page.goto(`${spec.base}/`);
    await page.waitForSelector('#results[data-state="done"]');
    await page.waitForFunction((s) => [...document.querySelectorAll('#f-service option')].some((o) => o.value === s), spec.form.service);
    await page.selectOption('#f-service', spec.form.service);
    if (spec.form.status) await page.selectOption('#f-status', spec.form.status);
    if (spec.form.minDuration) await page.fill('#f-min', spec.form.minDuration);
    await page.click('#f-submit');
    await page.waitForFunction(() => location.search.includes('service='));
    await page.waitForSelector('#results[data-state="done"]');
    out.form = await page.$$eval('#trace-table tr[data-trace-id]', (rows) => rows.map((r) => r.dataset.traceId));
  }
  // 4. The graphs page: the service map's edges.
  await page.goto(`${spec.base}/graph`);
  await page.waitForSelector('main[data-state="done"]');
  out.serviceEdges = await page.$$eval('#service-map tr[data-edge]', (rows) => rows.map((r) => [r.dataset.edge, Number(r.lastChild.textContent)]));
  out.pageErrors = errors;
} finally {
  await browser.close();
  clearTimeout(killer);
}
process.stdout.write(JSON.stringify(out) + '\n');
