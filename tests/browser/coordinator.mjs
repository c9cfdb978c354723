// The coordinator's page in a real browser (issue 15): Debian's Chromium driven by
// playwright-core. tests/browser.rs starts `signaal serve` (over the demo register on PostgreSQL,
// the live feed on real Kafka) and a classifier, then runs this with:
//   SIGNAAL_WEB      the server's base URL (http://127.0.0.1:PORT)
//   SIGNAAL_TOKEN    the configured token
//   SIGNAAL_FROM, SIGNAAL_TO   the period the demo's samples fall in
//   SIGNAAL_PUBLISH  a JSON file: {brokers, topic, key, id, payload} of a raw signal to publish
//   SIGNAAL_SHOTS    where screenshots go (target/screenshots)
// Every check compares what the page draws with what the API answers; any failure exits 1.
import { chromium } from "playwright-core";
import { spawnSync } from "node:child_process";
import fs from "node:fs";
import os from "node:os";
import path from "node:path";

const base = must("SIGNAAL_WEB");
const token = must("SIGNAAL_TOKEN");
const from = must("SIGNAAL_FROM");
const to = must("SIGNAAL_TO");
const publish = JSON.parse(fs.readFileSync(must("SIGNAAL_PUBLISH"), "utf8"));
const shots = must("SIGNAAL_SHOTS");
fs.mkdirSync(shots, { recursive: true });

function must(name) {
  const v = process.env[name];
  if (!v) throw new Error(`${name} is not set (tests/browser.rs sets it)`);
  return v;
}

let failures = 0;
function check(ok, what) {
  console.log(`${ok ? "ok  " : "FAIL"} ${what}`);
  if (!ok) failures++;
}

function same(a, b) {
  return JSON.stringify(a) === JSON.stringify(b);
}

async function api(route, params = {}, init = {}) {
  const q = new URLSearchParams(params);
  const r = await fetch(`${base}/api/v1/${route}?${q}`, {
    ...init,
    headers: { authorization: `Bearer ${token}`, "content-type": "application/json", ...(init.headers || {}) },
  });
  if (!r.ok) throw new Error(`${route}: ${r.status} ${await r.text()}`);
  return r.json();
}

// Access: no token, a wrong token (bearer and basic) get 401; the page asks for basic auth.
{
  const none = await fetch(`${base}/`);
  check(none.status === 401, `page without a token: ${none.status}`);
  check(/^Basic /.test(none.headers.get("www-authenticate") || ""), "the page asks for basic auth");
  const wrong = await fetch(`${base}/`, {
    headers: { authorization: "Basic " + Buffer.from("signaal:guess").toString("base64") },
  });
  check(wrong.status === 401, `page with a wrong password: ${wrong.status}`);
  const wrongApi = await fetch(`${base}/api/v1/pareto`, { headers: { authorization: "Bearer guess" } });
  check(wrongApi.status === 401, `API with a wrong bearer token: ${wrongApi.status}`);
  const wrongLive = await fetch(`${base}/live/signals`, { headers: { authorization: "Bearer guess" } });
  check(wrongLive.status === 401, `live feed with a wrong token: ${wrongLive.status}`);
}

// An improvement action, so the actions view has a before/after chart.
const actions = await api("actions");
if (!actions.some((a) => a.description === "Storingspagina op de website")) {
  await api("actions", {}, {
    method: "POST",
    body: JSON.stringify({
      theme: "digital_service",
      description: "Storingspagina op de website",
      owner: "team online",
      start_date: "2026-11-14",
    }),
  });
}

const userDataDir = fs.mkdtempSync(path.join(os.tmpdir(), "signaal-chromium-"));
const context = await chromium.launchPersistentContext(userDataDir, {
  executablePath: process.env.SIGNAAL_CHROMIUM || "/usr/bin/chromium",
  headless: true,
  args: [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
  ],
  viewport: { width: 1280, height: 800 },
  httpCredentials: { username: "signaal", password: token },
});
const page = context.pages()[0] || (await context.newPage());
const errors = [];
page.on("pageerror", (e) => errors.push(String(e)));
page.on("console", (m) => m.type() === "error" && errors.push(m.text()));
const external = [];
page.on("request", (r) => {
  if (!r.url().startsWith(base)) external.push(r.url());
});

async function marks(selector) {
  return page.$$eval(selector, (els) =>
    els.map((e) => [e.getAttribute("data-key"), Number(e.getAttribute("data-value"))]),
  );
}

// Every chart against the API, for the filters `params`.
async function checkCharts(params, label) {
  const themes = await api("pareto", { ...params, by: "theme" });
  const subjects = await api("pareto", { ...params, by: "subject" });
  const impact = await api("impact", { ...params, by: "theme" });
  const timeline = await api("timeline", { ...params, by: "theme", limit: 5 });
  const key = (k) => [k.theme, k.subject].filter(Boolean).join("/");
  const pareto = (r) => r.rows.map((row) => [key(row.key), row.count]);
  check(themes.rows.length > 0, `${label}: the API has themes (${themes.rows.length})`);
  check(same(await marks("#pareto-themes svg .bar"), pareto(themes)), `${label}: theme Pareto bars = API rows`);
  check(same(await marks("#pareto-subjects svg .bar"), pareto(subjects)), `${label}: subject Pareto bars = API rows`);
  const points = await marks("#impact svg .point");
  check(
    same(points, impact.rows.map((r) => [key(r.key), r.count])),
    `${label}: scatter points = API rows (${points.length})`,
  );
  const figures = await page.$$("#timeline figure.timeline");
  check(figures.length === timeline.series.length, `${label}: ${figures.length} timelines = API series`);
  for (let i = 0; i < Math.min(figures.length, timeline.series.length); i++) {
    const s = timeline.series[i];
    const drawn = await figures[i].$$eval(".point", (els) =>
      els.map((e) => [e.getAttribute("data-key"), Number(e.getAttribute("data-value"))]),
    );
    check(same(drawn, s.buckets.map((b) => [b.start, b.signals])), `${label}: timeline ${key(s.key)} points = API buckets`);
    const alerts = await figures[i].$$eval(".alert", (els) => els.length);
    check(alerts === s.alerts.length, `${label}: timeline ${key(s.key)} alert markers ${alerts} = API ${s.alerts.length}`);
  }
  return { themes, subjects, impact, timeline };
}

const period = { from, to };
const url = `${base}/?from=${from}&to=${to}`;
const started = Date.now();
await page.goto(url, { waitUntil: "load" });
console.log(`page loaded in ${Date.now() - started} ms`);
const first = await checkCharts(period, "all signals");
const alertsDrawn = await page.$$eval("#timeline .alert", (els) => els.length);
check(alertsDrawn > 0, `the demo's spike shows as alert markers (${alertsDrawn})`);
const actionBars = await page.$$eval("#actions svg .bar", (els) => els.map((e) => e.getAttribute("data-key")));
check(same(actionBars, ["before", "after"]), `the action's before/after bars: ${actionBars}`);
const recurrenceRows = await page.$$eval("#recurrence tbody tr", (els) => els.length);
check(recurrenceRows > 0, `the recurrence list has rows (${recurrenceRows})`);
const firstRowLevel = await page.$eval("#recurrence tbody tr", (e) => e.className).catch(() => "");
check(firstRowLevel === "pattern", `patterns come first (${firstRowLevel})`);
const listed = await page.$$eval("#signals li.signal", (els) => els.length);
check(listed > 0, `signals are listed (${listed})`);
check((await page.$$("#signals mark")).length > 0, "evidence is highlighted in the listed signals");

await page.screenshot({ path: path.join(shots, "overview.png") });
for (const id of ["pareto", "timeline", "impact", "recurrence", "actions"]) {
  await page.locator(`#${id}`).screenshot({ path: path.join(shots, `${id}.png`) });
}

// The live feed: a signal published to Kafka appears within 2 s, its evidence highlighted.
await page.waitForSelector('#live-status[data-state="open"]', { timeout: 10000 });
// The consumer joins its group when the server starts; give it a moment to own the partitions.
await page.waitForTimeout(Number(process.env.SIGNAAL_LIVE_SETTLE_MS || 3000));
const payloadFile = path.join(userDataDir, "signal.json");
fs.writeFileSync(payloadFile, publish.payload);
const sent = Date.now();
const kcat = spawnSync("kcat", ["-P", "-b", publish.brokers, "-t", publish.topic, "-k", publish.key, payloadFile], {
  encoding: "utf8",
});
check(kcat.status === 0, `published with kcat ${kcat.stderr || ""}`.trim());
const item = `#live-feed li[data-id="${publish.id}"]`;
let arrived = true;
try {
  await page.waitForSelector(item, { timeout: 10000 });
} catch (e) {
  arrived = false;
}
const latency = Date.now() - sent;
console.log(`live feed latency ${latency} ms`);
check(arrived && latency <= 2000, `the published signal appears in the live feed within 2 s (${latency} ms)`);
if (arrived) {
  const marked = await page.$$eval(`${item} mark`, (els) => els.map((e) => e.textContent));
  check(marked.length > 0, `its evidence is highlighted: ${JSON.stringify(marked)}`);
  const chips = await page.$$eval(`${item} .chip.theme`, (els) => els.map((e) => e.dataset.theme));
  check(chips.length > 0, `with its themes: ${chips}`);
}
await page.locator("#live").screenshot({ path: path.join(shots, "live.png") });

// A filter, chosen with the keyboard, narrows every view and lives in the URL.
const top = first.themes.rows[0].key.theme;
const index = await page.$eval("#f-theme", (e, v) => [...e.options].findIndex((o) => o.value === v), top);
await page.focus("#f-theme");
for (let i = 0; i < index; i++) await page.keyboard.press("ArrowDown");
check((await page.$eval("#f-theme", (e) => e.value)) === top, `the theme chosen with the arrow keys: ${top}`);
// Tab on to the Apply button (subject, channel, cause, kind lie in between) and press Enter.
for (let i = 0; i < 5; i++) await page.keyboard.press("Tab");
const focused = await page.evaluate(() => document.activeElement.outerHTML.slice(0, 40));
check(focused.startsWith("<button"), `Tab reaches the Apply button: ${focused}`);
await Promise.all([page.waitForNavigation(), page.keyboard.press("Enter")]);
check(new URL(page.url()).searchParams.get("theme") === top, `the filter is in the URL: ${page.url()}`);
const narrowed = await checkCharts({ ...period, theme: top }, `theme=${top}`);
check(narrowed.subjects.total < first.subjects.total || first.subjects.total === 0, "the subjects narrowed");
const listedThemes = await page.$$eval("#signals li.signal", (els) =>
  els.map((li) => [...li.querySelectorAll(".chip.theme")].map((c) => c.dataset.theme)),
);
check(listedThemes.length > 0 && listedThemes.every((t) => t.includes(top)), `every listed signal has ${top}`);
await page.reload({ waitUntil: "load" });
check((await page.$eval("#f-theme", (e) => e.value)) === top, "the filter survives a reload");
await checkCharts({ ...period, theme: top }, `theme=${top} after reload`);
await page.screenshot({ path: path.join(shots, "filtered.png") });

// Every chart link is reachable by keyboard and has a name a screen reader can say.
const links = await page.$$eval("svg a", (as) =>
  as.map((a) => {
    a.focus();
    return [document.activeElement === a, a.getAttribute("aria-label") || "", a.closest("svg").getAttribute("role")];
  }),
);
check(links.length > 0 && links.every(([f, name, role]) => f && name.length > 0 && role === "group"), `${links.length} chart links focusable, named, in a group`);

// Drill-down: a subject bar leads to the signals behind it.
const bar = page.locator("#pareto-subjects svg a").first();
const subject = await bar.locator(".bar").getAttribute("data-key");
await Promise.all([page.waitForNavigation(), bar.click()]);
const u = new URL(page.url());
check(u.searchParams.get("subject") === subject && u.searchParams.get("theme") === top, `drill-down to ${subject}: ${page.url()}`);
const drilled = await page.$$eval("#signals li.signal", (els) =>
  els.map((li) => [...li.querySelectorAll(".chip.subject")].map((c) => c.dataset.subject)),
);
check(drilled.length > 0 && drilled.every((s) => s.includes(subject)), `every listed signal is about ${subject}`);

// English labels, and a phone's width.
await page.goto(`${url}&lang=en`, { waitUntil: "load" });
check((await page.textContent("h1")).includes("what customers say"), "English labels");
await page.setViewportSize({ width: 390, height: 844 });
const overflow = await page.evaluate(() => document.documentElement.scrollWidth - window.innerWidth);
check(overflow <= 1, `no sideways scrolling on a phone (${overflow} px)`);
await page.screenshot({ path: path.join(shots, "phone.png") });

check(errors.length === 0, `no errors in the page: ${errors.join(" | ")}`);
check(external.length === 0, `nothing fetched from elsewhere: ${external.join(" ")}`);
await context.close();
fs.rmSync(userDataDir, { recursive: true, force: true });
console.log(failures ? `${failures} checks failed` : "all checks passed");
process.exit(failures ? 1 : 0);
