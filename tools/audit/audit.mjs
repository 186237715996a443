// The browser half of `portalctl audit` (src/audit/): loads each tenant's pages in headless
// Chromium (playwright-core driving the system's Chromium), runs axe-core on each, and reports
// what it saw. It judges nothing: portalctl decides what counts as a finding.
//
// Input (stdin, JSON): { chromium, resolve, scheme, concurrency, timeoutMs, legalPaths, searchFallback,
//                        tenants: [{ tenant, host }] }
//   resolve: "IP:PORT" every hostname is mapped to (plain HTTP with the tenant's Host), or null (real DNS).
// Output (stdout, JSON): { tenants: [{ tenant, pages: [{ name, path, status, headers, violations, error }] }] }
// Progress lines go to stderr.

import { readFileSync } from "node:fs";
import { createRequire } from "node:module";
import { chromium } from "playwright-core";

const require = createRequire(import.meta.url);
const AXE_SOURCE = readFileSync(require.resolve("axe-core/axe.min.js"), "utf8");
const AXE_TAGS = ["wcag2a", "wcag2aa", "wcag21a", "wcag21aa", "wcag22aa", "best-practice"];

async function readStdin() {
  const chunks = [];
  for await (const c of process.stdin) chunks.push(c);
  return JSON.parse(Buffer.concat(chunks).toString("utf8"));
}

/** Load one page and run axe on it. */
async function auditPage(page, job, origin, name, path) {
  const entry = { name, path, status: null, finalPath: null, headers: {}, violations: [], error: null };
  try {
    const response = await page.goto(origin + path, { waitUntil: "load", timeout: job.timeoutMs });
    if (!response) throw new Error("no response");
    entry.status = response.status();
    entry.headers = await response.allHeaders();
    const final = new URL(page.url());
    entry.finalPath = final.origin === origin ? final.pathname + final.search : final.href;
    if (final.origin !== origin) {
      // A login that goes on to the identity provider: not our page to audit.
      return entry;
    }
    await page.evaluate(AXE_SOURCE);
    const result = await page.evaluate(
      async (tags) => await globalThis.axe.run(document, { runOnly: { type: "tag", values: tags }, resultTypes: ["violations"] }),
      AXE_TAGS,
    );
    entry.violations = result.violations.map((v) => ({
      id: v.id,
      impact: v.impact ?? "minor",
      help: v.help,
      helpUrl: v.helpUrl,
      nodes: v.nodes.map((n) => ({ target: n.target.map(String), html: n.html.slice(0, 300), summary: n.failureSummary ?? "" })),
    }));
  } catch (e) {
    entry.error = String(e?.message ?? e).split("\n")[0];
  }
  return entry;
}

/** Links on the current page matching `selector`, as same-origin paths. */
async function links(page, origin, selector) {
  const hrefs = await page.$$eval(selector, (as) => as.map((a) => a.href)).catch(() => []);
  const out = [];
  for (const h of hrefs) {
    try {
      const u = new URL(h);
      if (u.origin === origin && !out.includes(u.pathname)) out.push(u.pathname);
    } catch {}
  }
  return out;
}

async function auditTenant(browser, job, t) {
  const origin = `${job.scheme}://${t.host}`;
  const context = await browser.newContext({ bypassCSP: true, viewport: { width: 1280, height: 900 }, locale: "de-DE" });
  const page = await context.newPage();
  const pages = [];
  try {
    pages.push(await auditPage(page, job, origin, "home", "/"));
    // The legal pages the tenant links from its footer (and serves itself).
    const footer = await links(page, origin, "footer a[href]");
    const legal = job.legalPaths.filter((p) => footer.includes(p));
    pages.push(await auditPage(page, job, origin, "a-z", "/leistungen"));
    const services = await links(page, origin, 'main a[href^="/leistungen/"]');
    let term = job.searchFallback;
    if (services.length > 0) {
      pages.push(await auditPage(page, job, origin, "service", services[0]));
      const title = await page.$eval("main h1", (h) => h.textContent.trim()).catch(() => "");
      if (title) term = title.split(/\s+/)[0];
    }
    pages.push(await auditPage(page, job, origin, "search", "/suche?q=" + encodeURIComponent(term)));
    pages.push(await auditPage(page, job, origin, "login", "/anmelden"));
    pages.push(await auditPage(page, job, origin, "not-found", "/seite-gibt-es-nicht"));
    for (const p of legal) pages.push(await auditPage(page, job, origin, "legal", p));
  } finally {
    await context.close().catch(() => {});
  }
  process.stderr.write(`audited ${t.tenant}: ${pages.length} pages\n`);
  return { tenant: t.tenant, pages };
}

const job = await readStdin();
const args = ["--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage", "--disable-background-networking",
  "--disable-component-update", "--disable-sync", "--no-first-run"];
if (job.resolve) args.push(`--host-resolver-rules=MAP * ${job.resolve}`);
let browser;
try {
  browser = await chromium.launch({ executablePath: job.chromium, headless: true, args, chromiumSandbox: false, timeout: 60000 });
} catch (e) {
  process.stderr.write(`cannot start Chromium ${job.chromium}: ${String(e?.message ?? e).split("\n")[0]}\n`);
  process.exit(3);
}
const results = new Array(job.tenants.length);
let next = 0;
async function worker() {
  while (next < job.tenants.length) {
    const i = next++;
    results[i] = await auditTenant(browser, job, job.tenants[i]);
  }
}
try {
  await Promise.all(Array.from({ length: Math.max(1, job.concurrency) }, worker));
} finally {
  await browser.close().catch(() => {});
}
process.stdout.write(JSON.stringify({ tenants: results }) + "\n");
