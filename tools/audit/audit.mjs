// The browser half of `portalctl audit` (src/audit/): loads each tenant's pages in headless
// Chromium (playwright-core driving the system's Chromium), runs axe-core on each, and reports
// what it saw. It judges nothing: portalctl decides what counts as a finding.
//
// Input (stdin, JSON): { chromium, resolve, scheme, concurrency, timeoutMs, legalPaths, searchFallback,
//                        tenants: [{ tenant, host }] }
//   resolve: "IP:PORT" every hostname is mapped to (plain HTTP with the tenant's Host), or null (real DNS).
// Output (stdout, JSON): { tenants: [{ tenant, footerLinks: [{ href, text }],
//                                     pages: [{ name, path, status, headers, violations, incomplete, error }] }] }
//   violations: the rules axe-core found violated; incomplete: the checks it could not decide ("needs review"),
//   each { id, impact, help, helpUrl, nodes: [{ target, html, summary }] }.
// Progress lines go to stderr.
//
// Two helpers besides, for the audit's own HTML report and the screenshots in docs/screenshots/:
//   node audit.mjs --check FILE.html            axe-core on a local file: { files: [{ file, violations, incomplete }] }
//   node audit.mjs --screenshot FILE=URL ...    screenshots (--width 800, --max-height 1800; PNG with --colours 256,
//                                               or JPEG with --quality 70 for FILE.jpg); URL may be a local file
// (--chromium PATH for both; default /usr/bin/chromium).

import { readFileSync, statSync, writeFileSync } from "node:fs";
import { createRequire } from "node:module";
import { resolve as resolvePath } from "node:path";
import { pathToFileURL } from "node:url";
import { parseArgs } from "node:util";
import { chromium } from "playwright-core";

const require = createRequire(import.meta.url);
const AXE_SOURCE = readFileSync(require.resolve("axe-core/axe.min.js"), "utf8");
const AXE_TAGS = ["wcag2a", "wcag2aa", "wcag21a", "wcag21aa", "wcag22aa", "best-practice"];

async function readStdin() {
  const chunks = [];
  for await (const c of process.stdin) chunks.push(c);
  return JSON.parse(Buffer.concat(chunks).toString("utf8"));
}

/** One axe-core result (a violated rule, or a check it could not decide) as reported. */
function rule(v) {
  return {
    id: v.id,
    impact: v.impact ?? "minor",
    help: v.help,
    helpUrl: v.helpUrl,
    nodes: v.nodes.map((n) => ({ target: n.target.map(String), html: n.html.slice(0, 300), summary: n.failureSummary ?? "" })),
  };
}

/** Load one page and run axe on it. */
async function auditPage(page, job, origin, name, path) {
  const entry = { name, path, status: null, finalPath: null, headers: {}, violations: [], incomplete: [], error: null };
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
      async (tags) => await globalThis.axe.run(document, { runOnly: { type: "tag", values: tags }, resultTypes: ["violations", "incomplete"] }),
      AXE_TAGS,
    );
    entry.violations = result.violations.map(rule);
    entry.incomplete = result.incomplete.map(rule);
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
  // The login page of the HTTP-POST binding submits its form to the identity provider by script, which would leave
  // the portal before its page is audited: forms are not submitted by script here.
  await context.addInitScript(() => {
    HTMLFormElement.prototype.submit = function () {};
    HTMLFormElement.prototype.requestSubmit = function () {};
  });
  const page = await context.newPage();
  const pages = [];
  let footerLinks = [];
  try {
    pages.push(await auditPage(page, job, origin, "home", "/"));
    // Every link of the home page's footer (for the check of the legal pages), and the legal pages among them that
    // the tenant serves itself.
    footerLinks = (
      await page.$$eval("footer a[href]", (as) => as.map((a) => ({ href: a.href, text: a.textContent.trim() }))).catch(() => [])
    ).map((l) => {
      // The portal's own pages as paths, like the pages audited; other sites as absolute URLs.
      try {
        const u = new URL(l.href);
        return { href: u.origin === origin ? u.pathname + u.search : u.href, text: l.text };
      } catch {
        return l;
      }
    });
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
  return { tenant: t.tenant, footerLinks, pages };
}

/** Start the system's Chromium; exit 3 when it does not start. */
async function launch(executablePath, resolve) {
  const args = ["--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage", "--disable-background-networking",
    "--disable-component-update", "--disable-sync", "--no-first-run"];
  if (resolve) args.push(`--host-resolver-rules=MAP * ${resolve}`);
  try {
    return await chromium.launch({ executablePath, headless: true, args, chromiumSandbox: false, timeout: 60000 });
  } catch (e) {
    process.stderr.write(`cannot start Chromium ${executablePath}: ${String(e?.message ?? e).split("\n")[0]}\n`);
    process.exit(3);
  }
}

/** The audit of `portalctl audit`: the job on stdin, the report on stdout. */
async function auditJob() {
  const job = await readStdin();
  const browser = await launch(job.chromium, job.resolve);
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
}

/** `--check FILE.html`: axe-core on one local file (the audit's own HTML report); prints its violations and the
 *  checks it could not decide as JSON, exit 0. */
async function checkFile(browser, file) {
  const context = await browser.newContext({ viewport: { width: 1280, height: 900 }, locale: "de-DE" });
  try {
    const page = await context.newPage();
    await page.goto(pathToFileURL(resolvePath(file)).href, { waitUntil: "load" });
    await page.evaluate(AXE_SOURCE);
    const result = await page.evaluate(
      async (tags) => await globalThis.axe.run(document, { runOnly: { type: "tag", values: tags }, resultTypes: ["violations", "incomplete"] }),
      AXE_TAGS,
    );
    return { file, violations: result.violations.map(rule), incomplete: result.incomplete.map(rule) };
  } finally {
    await context.close().catch(() => {});
  }
}

/** `--screenshot FILE=URL`: the page as people see it (its own CSP applies), `--width` CSS pixels wide and at most
 *  `--max-height` high, from the top or from the element the URL's #fragment names; JPEG (`--quality`) when FILE
 *  ends in .jpg, else PNG with a palette of `--colours` colours (0: full colour). Prints each file and its size. */
async function screenshot(browser, spec, opts) {
  const at = spec.indexOf("=");
  const [file, url] = [spec.slice(0, at), spec.slice(at + 1)];
  if (at < 1 || !url) throw new Error(`--screenshot wants FILE=URL, not ${spec}`);
  const width = Number(opts.width);
  const context = await browser.newContext({ viewport: { width, height: 600 }, locale: "de-DE", deviceScaleFactor: 1 });
  try {
    const page = await context.newPage();
    // A local file (with an optional #fragment) or a URL.
    const [path, fragment] = url.split("#", 2);
    const target = /^[a-z]+:/.test(url) ? url : pathToFileURL(resolvePath(path)).href + (fragment ? "#" + fragment : "");
    const response = await page.goto(target, { waitUntil: "load" });
    if (response && !response.ok() && !target.startsWith("file:")) throw new Error(`${url} answers ${response.status()}`);
    // From the element the URL's #fragment names (a part of a long page), else from the top.
    const [top, height] = await page.evaluate(() => {
      const at = location.hash ? document.getElementById(decodeURIComponent(location.hash.slice(1))) : null;
      const y = at ? Math.max(0, at.getBoundingClientRect().top + window.scrollY - 16) : 0;
      return [y, document.documentElement.scrollHeight - y];
    });
    const jpeg = /\.jpe?g$/i.test(file);
    let image = await page.screenshot({
      type: jpeg ? "jpeg" : "png",
      ...(jpeg ? { quality: Number(opts.quality) } : {}),
      fullPage: true,
      clip: { x: 0, y: top, width, height: Math.min(height, Number(opts["max-height"])) },
    });
    const colours = Number(opts.colours);
    if (!jpeg && colours > 0) {
      // A palette of at most `colours` colours: a fraction of the size, for screenshots of text. (Loaded here: the
      // audit itself does not need it.)
      const UPNG = require("upng-js");
      const png = UPNG.decode(image);
      image = Buffer.from(UPNG.encode(UPNG.toRGBA8(png), png.width, png.height, colours));
    }
    writeFileSync(file, image);
    process.stderr.write(`${file}: ${url}, ${statSync(file).size} bytes\n`);
  } finally {
    await context.close().catch(() => {});
  }
}

const cli = parseArgs({
  options: {
    chromium: { type: "string", default: "/usr/bin/chromium" },
    check: { type: "string", multiple: true, default: [] },
    screenshot: { type: "string", multiple: true, default: [] },
    width: { type: "string", default: "800" },
    "max-height": { type: "string", default: "1800" },
    quality: { type: "string", default: "70" },
    colours: { type: "string", default: "256" },
  },
});
if (cli.values.check.length === 0 && cli.values.screenshot.length === 0) {
  await auditJob();
} else {
  const browser = await launch(cli.values.chromium, null);
  try {
    const checked = [];
    for (const f of cli.values.check) checked.push(await checkFile(browser, f));
    for (const s of cli.values.screenshot) await screenshot(browser, s, cli.values);
    if (checked.length > 0) process.stdout.write(JSON.stringify({ files: checked }) + "\n");
  } finally {
    await browser.close().catch(() => {});
  }
}
