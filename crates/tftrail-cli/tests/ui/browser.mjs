// Drives Debian's chromium (TFTRAIL_CHROMIUM; never a downloaded browser) through the tftrail
// web UI with playwright-core (found through NODE_PATH). Run by crates/tftrail-cli/tests/web_ui.rs,
// which starts the server, makes the records and checks what this prints: one JSON line.
//
// Mode "auditor" (default): a wrong token is refused; log in with a reader token; filter the
// timeline to one resource (only its records listed); open a record and see old and new
// values; a sensitive value shown only as redacted, the secret nowhere in any page's HTML;
// download a receipt; resource and status pages; a phone-sized viewport; logout. Screenshots
// of each page into TFTRAIL_UI_SCREENSHOTS.
// Mode "public": with --public-read the timeline shows without login.

import { createRequire } from "node:module";
import path from "node:path";
import fs from "node:fs";

const require = createRequire(import.meta.url);
const { chromium } = require("playwright-core");

const env = (k, d) => {
  const v = process.env[k];
  if (v === undefined || v === "") {
    if (d !== undefined) return d;
    throw new Error(`${k} is not set`);
  }
  return v;
};
const base = env("TFTRAIL_UI_URL");
const secret = env("TFTRAIL_UI_SECRET");
const mode = env("TFTRAIL_UI_MODE", "auditor");

function check(cond, what) {
  if (!cond) throw new Error(`check failed: ${what}`);
}

const pages = [];
async function html(page) {
  const h = await page.content();
  check(!h.includes(secret), `the secret appears in ${page.url()}`);
  pages.push(h);
  return h;
}

const context = await chromium.launchPersistentContext(env("TFTRAIL_UI_PROFILE"), {
  executablePath: env("TFTRAIL_CHROMIUM"),
  headless: true,
  acceptDownloads: true,
  viewport: { width: 1280, height: 900 },
  args: [
    "--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
    "--disable-background-networking", "--disable-component-update", "--disable-sync",
  ],
});
const result = { mode };
try {
  const page = context.pages()[0] ?? (await context.newPage());
  // A page that runs script the UI did not serve would be a failure of the CSP or escaping.
  page.on("dialog", (d) => {
    throw new Error(`a dialog opened: ${d.message()}`);
  });

  if (mode === "public") {
    const r = await page.goto(`${base}/`);
    check(r.status() === 200, `public timeline status ${r.status()}`);
    check(new URL(page.url()).pathname === "/", `no redirect to login: ${page.url()}`);
    check(await page.locator("table.records tbody tr").count() > 0, "records listed");
    check((await page.textContent("header")).includes("Public read"), "marked public");
    await html(page);
    result.public = true;
  } else {
    const shots = env("TFTRAIL_UI_SCREENSHOTS");
    const shot = (name) => page.screenshot({ path: path.join(shots, `${name}.png`), fullPage: true });
    const resource = env("TFTRAIL_UI_RESOURCE");
    const expect = env("TFTRAIL_UI_EXPECT").split(",").map(Number).sort((a, b) => a - b);
    const changed = env("TFTRAIL_UI_CHANGED");
    const created = env("TFTRAIL_UI_CREATED");

    // Not logged in: the login page.
    await page.goto(`${base}/`);
    check(new URL(page.url()).pathname === "/login", `redirected to login: ${page.url()}`);

    // A wrong token: refused with an error, no session cookie.
    await page.fill("#token", "tftrail_" + "A".repeat(43));
    const [refused] = await Promise.all([
      page.waitForNavigation(),
      page.click("form.login button[type=submit]"),
    ]);
    check(refused.status() === 401, `wrong token status ${refused.status()}`);
    check(await page.isVisible("#login-error"), "an error is shown");
    check((await page.textContent("#login-error")).includes("unknown token"), "the error says why");
    const cookies = await context.cookies();
    check(!cookies.some((c) => c.name === "tftrail_session"), "no session cookie after a wrong token");
    await shot("login");

    // The right one.
    await page.fill("#token", env("TFTRAIL_UI_TOKEN"));
    await Promise.all([page.waitForNavigation(), page.click("form.login button[type=submit]")]);
    check(new URL(page.url()).pathname === "/", `landed on the timeline: ${page.url()}`);
    const session = (await context.cookies()).find((c) => c.name === "tftrail_session");
    check(session && session.httpOnly && session.sameSite === "Strict", "an HttpOnly, SameSite=Strict session cookie");
    await html(page);
    await shot("timeline");

    // Filter to one resource: only its records.
    await page.fill("#resource", resource);
    await Promise.all([page.waitForNavigation(), page.click("form.filters button[type=submit]")]);
    const url = new URL(page.url());
    check(url.searchParams.get("resource") === resource, `a shareable filter URL: ${page.url()}`);
    check(!url.search.includes("actor="), "empty fields left out of the URL");
    const listed = (await page.locator("table.records tbody th[scope=row]").allTextContents())
      .map((t) => Number(t.trim())).sort((a, b) => a - b);
    check(JSON.stringify(listed) === JSON.stringify(expect), `listed ${listed} want ${expect}`);
    await html(page);

    // The record that changed the size: old and new values.
    await Promise.all([page.waitForNavigation(), page.click(`table.records a[href="/records/${changed}"] >> nth=0`)]);
    check(new URL(page.url()).pathname === `/records/${changed}`, `on the record: ${page.url()}`);
    const before = await page.locator("td.before").allTextContents();
    const after = await page.locator("td.after").allTextContents();
    check(before.some((t) => t.includes('"small"')), `old value shown: ${before}`);
    check(after.some((t) => t.includes('"large"')), `new value shown: ${after}`);
    await html(page);
    await shot("record");

    // Download its receipt.
    const [download] = await Promise.all([
      page.waitForEvent("download"),
      page.click("a.button[href$='/receipt']"),
    ]);
    const receipt = path.join(env("TFTRAIL_UI_DOWNLOADS"), download.suggestedFilename());
    await download.saveAs(receipt);
    check(fs.statSync(receipt).size > 0, "a receipt was saved");
    result.receipt = receipt;

    // The apply's outcome: the values that changed in the state, old and new.
    await page.goto(`${base}/records/${env("TFTRAIL_UI_APPLIED")}`);
    const was = await page.locator("td.before").allTextContents();
    const now = await page.locator("td.after").allTextContents();
    check(was.some((t) => t.includes('"small"')), `the outcome's old value: ${was}`);
    check(now.some((t) => t.includes('"large"')), `the outcome's new value: ${now}`);
    await html(page);

    // The record that created the sensitive resource: redacted, never the secret.
    await page.goto(`${base}/records/${created}`);
    const redacted = await page.locator(".redacted").count();
    check(redacted > 0, "a sensitive value shown as redacted");
    await html(page);

    // The resource's page and the status page.
    await page.goto(`${base}/resources/${resource}`);
    check((await page.textContent("h1")).includes(resource), "the resource page");
    check(await page.locator("table.records tbody tr").count() > 0, "its history");
    const last = await page.locator("td.after").allTextContents();
    check(last.some((t) => t.includes('"large"')), `its last change's new value: ${last}`);
    await html(page);
    await shot("resource");
    await page.goto(`${base}/status`);
    check((await page.textContent("#log-size")).includes("records"), "the log size");
    await html(page);
    await shot("status");

    // A phone: tables become stacked, nothing wider than the screen.
    await page.setViewportSize({ width: 390, height: 844 });
    await page.goto(`${base}/`);
    const overflow = await page.evaluate(() => document.documentElement.scrollWidth - window.innerWidth);
    check(overflow <= 1, `no horizontal scrolling on a phone (${overflow}px too wide)`);
    const display = await page.evaluate(() => getComputedStyle(document.querySelector("table.records tr")).display);
    check(display === "block", `rows stacked on a phone (display ${display})`);
    await shot("phone");
    await page.setViewportSize({ width: 1280, height: 900 });

    // Logout: the session ends.
    await Promise.all([page.waitForNavigation(), page.click("header form[action='/logout'] button")]);
    check(new URL(page.url()).pathname === "/login", `logged out: ${page.url()}`);
    await page.goto(`${base}/`);
    check(new URL(page.url()).pathname === "/login", "pages need a login again");
  }
  result.pages = pages;
} finally {
  await context.close();
}
console.log(JSON.stringify(result));
