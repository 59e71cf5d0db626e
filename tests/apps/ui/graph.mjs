// Drives Debian's chromium (headless, through playwright-core) over kspan's /graph page for
// tests/integration/ui_graph_test.cc, and prints what the page shows as one JSON object on
// stdout. The test decides what is right; this script only looks.
//
//   node graph.mjs SPEC_JSON
//   SPEC: {"base":"http://127.0.0.1:PORT", "screenshot":"/path.png", "screenshotDark":"/dark.png"}
//   out:  {"agentEdges":[{from,kind,to,calls,errors,tokensIn,tokensOut,p95}],
//          "serviceEdges":[["caller>callee", calls], ...],
//          "agentText":"<text of the agent graph section>", "pageErrors":[...],
//          "drawn":{"agents"|"services":{"nodes":[{id,kind,label,box:[x,y,w,h]}],
//                   "edges":[{from,to,label}], "hidden":"<aria-hidden>"}},
//          "dark":{"nodeFill":..,"nodeText":..,"bodyBg":..} (the agent graph under a dark preference)}
//
// Bounded: every wait has a timeout, the whole run at most 60 s.
import { chromium } from 'playwright-core';

const spec = JSON.parse(process.argv[2]);
const out = {};
const killer = setTimeout(() => { console.error('graph.mjs: 60 s passed'); process.exit(3); }, 60000);

const browser = await chromium.launch({
  executablePath: '/usr/bin/chromium',
  headless: true,
  args: ['--no-sandbox', '--disable-gpu', '--no-first-run', '--disable-dev-shm-usage'],
});
try {
  const page = await browser.newPage({ viewport: { width: 1400, height: 900 }, colorScheme: 'light' });
  page.setDefaultTimeout(15000);
  const errors = [];
  page.on('pageerror', (e) => errors.push(String(e)));

  // Reached as a user would: the list, then the "Graphs" link in the navigation.
  await page.goto(`${spec.base}/`);
  await page.click('a[href="/graph"]');
  await page.waitForSelector('main[data-state="done"]');
  out.url = page.url();
  out.agentEdges = await page.$$eval('#agent-graph tbody tr', (rows) => rows.map((r) => {
    const c = [...r.cells].map((td) => td.textContent.trim());
    return {
      from: c[0], kind: c[1], to: c[2], calls: Number(c[3]), errors: Number(c[4]),
      tokensIn: Number(c[5]), tokensOut: Number(c[6]), p95: c[7],
    };
  }));
  out.agentText = await page.textContent('#agent-graph');
  out.serviceEdges = await page.$$eval('#service-map tr[data-edge]',
    (rows) => rows.map((r) => [r.dataset.edge, Number(r.lastChild.textContent)]));
  // The drawings (SVG): each node's box as the browser lays it out, each edge's ends and label.
  const drawn = () => page.$$eval('svg.graph', (svgs) => Object.fromEntries(svgs.map((s) => [s.dataset.graph, {
    hidden: s.getAttribute('aria-hidden'),
    nodes: [...s.querySelectorAll('g.node')].map((g) => {
      const b = g.querySelector('rect').getBoundingClientRect();
      return { id: g.dataset.id, kind: g.dataset.kind, label: g.querySelector('text').textContent,
        box: [b.x, b.y, b.width, b.height] };
    }),
    edges: [...s.querySelectorAll('g.edge')].map((g) => ({ from: g.dataset.from, to: g.dataset.to,
      label: g.querySelector('text').textContent, length: g.querySelector('path').getTotalLength() })),
  }])));
  out.drawn = await drawn();
  await page.screenshot({ path: spec.screenshot, fullPage: true });
  // Dark: the same page under a dark colour-scheme preference; the colours it resolves to.
  await page.emulateMedia({ colorScheme: 'dark' });
  await page.reload();
  await page.waitForSelector('main[data-state="done"]');
  out.dark = await page.evaluate(() => {
    const rect = document.querySelector('svg.graph[data-graph="agents"] g.node rect');
    const text = document.querySelector('svg.graph[data-graph="agents"] g.node text');
    return { bodyBg: getComputedStyle(document.body).backgroundColor,
      nodeFill: rect && getComputedStyle(rect).fill, nodeText: text && getComputedStyle(text).fill };
  });
  if (spec.screenshotDark) await page.screenshot({ path: spec.screenshotDark, fullPage: true });
  out.pageErrors = errors;
} finally {
  await browser.close();
  clearTimeout(killer);
}
process.stdout.write(JSON.stringify(out) + '\n');
