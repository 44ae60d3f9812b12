// The dashboard in a real headless Chromium (Debian's), driven by
// playwright-core, against the built chorus-hookd on loopback.
//
//   CHORUS_HOOKD     the binary (default: target/debug/chorus-hookd)
//   CHORUS_FIXTURES  the shared fixtures (default: ../shared/fixtures)
//   CHORUS_SCREENSHOTS  a folder: save the main pages there (docs/dashboard)
//   CHROMIUM         the browser (default: /usr/bin/chromium)

import { test, before, after } from "node:test";
import assert from "node:assert/strict";
import { spawn } from "node:child_process";
import { createServer } from "node:http";
import { createHmac, randomUUID } from "node:crypto";
import { mkdtempSync, readFileSync, existsSync, mkdirSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join, resolve, dirname } from "node:path";
import { fileURLToPath } from "node:url";
import { chromium } from "playwright-core";

const root = resolve(dirname(fileURLToPath(import.meta.url)), "../..");
const TOKEN = "browser-admin-token-0123456789abcdef";
const WAIT = 20_000;
const shots = process.env.CHORUS_SCREENSHOTS ? resolve(root, process.env.CHORUS_SCREENSHOTS) : null;

let server;
let base;
let receiver;
let browser;
let dataDir;

/// Start chorus-hookd on a free port; resolves once it says where it listens.
function startHookd() {
  const exe = process.env.CHORUS_HOOKD ?? join(root, "target/debug/chorus-hookd");
  dataDir = mkdtempSync(join(tmpdir(), "chorus-browser-"));
  const child = spawn(exe, ["serve", "--listen", "127.0.0.1:0", "--data-dir", dataDir], {
    env: {
      ...process.env,
      CHORUS_API_TOKEN: TOKEN,
      CHORUS_WORKFLOWS_ALLOW_UNSIGNED: "true",
      CHORUS_OUTGOING_ALLOWED_NETS: "127.0.0.0/8",
      CHORUS_LOG: "info",
      NO_COLOR: "1",
    },
    stdio: ["ignore", "ignore", "pipe"],
  });
  return new Promise((resolveStart, reject) => {
    let seen = "";
    const timer = setTimeout(() => reject(new Error(`hookd did not start:\n${seen}`)), WAIT);
    child.stderr.on("data", (chunk) => {
      seen += chunk.toString();
      const found = seen.match(/public_url\S*?(http:\/\/127\.0\.0\.1:\d+)/);
      if (found) {
        clearTimeout(timer);
        resolveStart({ child, base: found[1] });
      }
    });
    child.on("exit", (code) => reject(new Error(`hookd exited with ${code}:\n${seen}`)));
  });
}

async function api(method, path, body, token = TOKEN) {
  const answer = await fetch(`${base}${path}`, {
    method,
    headers: { authorization: `Bearer ${token}`, "content-type": "application/json" },
    body: body === undefined ? undefined : JSON.stringify(body),
  });
  const text = await answer.text();
  return { status: answer.status, body: text ? JSON.parse(text) : null };
}

/// A GitHub delivery of `fixture` (from the shared fixtures, when present),
/// signed with `secret`; the sender's answer status.
async function sendGithub(url, secret, event, fixture, fallback) {
  const dir = process.env.CHORUS_FIXTURES ?? resolve(root, "../shared/fixtures");
  const file = join(dir, "github", fixture);
  let body;
  if (existsSync(file)) {
    body = readFileSync(file);
  } else {
    console.log(`notice: ${file} not found; posting a small payload of the same shape`);
    body = Buffer.from(JSON.stringify(fallback));
  }
  const signature = "sha256=" + createHmac("sha256", secret).update(body).digest("hex");
  const answer = await fetch(url, {
    method: "POST",
    headers: {
      "content-type": "application/json",
      "x-github-event": event,
      "x-github-delivery": randomUUID(),
      "x-hub-signature-256": signature,
    },
    body,
  });
  return answer.status;
}

const issue = {
  action: "opened",
  issue: { number: 7, title: "Crash on start", html_url: "https://github.com/o/r/issues/7", user: { login: "octocat" }, body: "It crashes.", labels: [] },
  repository: { full_name: "o/r", html_url: "https://github.com/o/r" },
  sender: { login: "octocat" },
};

async function shot(page, name) {
  if (shots) {
    mkdirSync(shots, { recursive: true });
    await page.screenshot({ path: join(shots, `${name}.png`), fullPage: true });
  }
}

async function signIn(page, token, next = "/dashboard/hooks") {
  await page.goto(`${base}${next}`);
  await page.getByLabel("API token").fill(token);
  await page.getByRole("button", { name: "Sign in" }).click();
  await page.waitForURL(`${base}${next}`);
}

before(async () => {
  ({ child: server, base } = await startHookd());
  browser = await chromium.launch({
    executablePath: process.env.CHROMIUM ?? "/usr/bin/chromium",
    args: [
      "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
      "--disable-background-networking", "--disable-component-update", "--disable-sync",
    ],
  });
  const made = await api("POST", "/api/agents", { name: "builder", channel_id: "4242" });
  assert.equal(made.status, 201, JSON.stringify(made.body));
  // A subscriber that refuses every third request, for the subscriptions page.
  let seen = 0;
  receiver = createServer((req, res) => {
    req.resume();
    seen += 1;
    res.writeHead(seen % 3 === 0 ? 500 : 200).end();
  });
  await new Promise((ready) => receiver.listen(0, "127.0.0.1", ready));
  const sub = await api("POST", "/api/webhooks", {
    type: "outgoing", name: "Audit trail", url: `http://127.0.0.1:${receiver.address().port}/in`, events: ["custom.build"],
    retry: { strategy: "fixed", max_attempts: 1, initial_delay_ms: 100, max_delay_ms: 100, jitter: false },
  });
  assert.equal(sub.status, 201, JSON.stringify(sub.body));
});

after(async () => {
  await browser?.close();
  receiver?.close();
  server?.kill("SIGTERM");
  if (dataDir) rmSync(dataDir, { recursive: true, force: true });
});

test("a hook made, watched live, given a rule and turned off, all in the browser", async () => {
  const context = await browser.newContext({ viewport: { width: 1280, height: 900 } });
  const page = await context.newPage();
  const outside = [];
  page.on("request", (r) => {
    if (!r.url().startsWith(base)) outside.push(r.url());
  });

  // Sign in; the page asked for comes back after.
  await signIn(page, TOKEN);

  // Create a GitHub hook; its secret is shown once.
  await page.getByRole("link", { name: "New hook" }).click();
  await page.getByLabel("Provider").selectOption("github");
  await page.getByLabel("Name").fill("Issues");
  await page.getByRole("button", { name: "Create" }).click();
  const url = (await page.locator("#hook-url").textContent()).trim();
  const secret = (await page.locator("#hook-secret").textContent()).trim();
  assert.match(url, /\/webhook\/builder\/hk_/);
  assert.ok(secret.length >= 16, secret);
  await shot(page, "created");
  await page.getByRole("link", { name: "Go to the hook" }).click();
  assert.equal(await page.getByText(secret).count(), 0, "the secret is shown only once");

  // A signed delivery appears without a reload, with the message it became.
  const events = page.locator("#events .event");
  assert.equal(await events.count(), 0);
  assert.equal(await sendGithub(url, secret, "issues", "issues.opened.json", issue), 202);
  await page.locator("#events .event .message-title").first().waitFor({ timeout: WAIT });
  assert.equal(await events.count(), 1);
  const title = await page.locator("#events .message-title").first().textContent();
  assert.ok(title.trim().length > 0, "a message preview");

  // A rule added in the form: the next event follows it.
  await page.getByText("Add a rule").click();
  await page.getByLabel("Trigger").fill("issues.opened");
  await page.getByLabel("Action").selectOption("create_task");
  await page.getByLabel("Template").fill("Triage: {{ issue.title }}");
  await page.getByRole("button", { name: "Add rule" }).click();
  await page.locator("table code", { hasText: "issues.opened" }).waitFor({ timeout: WAIT });
  assert.equal(await sendGithub(url, secret, "issues", "issues.opened.json", issue), 202);
  await page.locator("#events .rules li", { hasText: "create_task: fired" }).first().waitFor({ timeout: WAIT });
  const tasks = await api("GET", "/api/tasks");
  assert.equal(tasks.body.items.length, 1, JSON.stringify(tasks.body));
  assert.match(tasks.body.items[0].title, /^Triage: /);
  await shot(page, "hook");

  // Turned off from the list: the sender is refused with 409.
  await page.getByRole("link", { name: "Hooks", exact: true }).click();
  await shot(page, "hooks");
  await page.getByRole("button", { name: "Disable Issues" }).click();
  await page.getByRole("button", { name: "Enable Issues" }).waitFor({ timeout: WAIT });
  assert.equal(await sendGithub(url, secret, "issues", "issues.opened.json", issue), 409);

  // A forged change without the CSRF token is refused, and changes nothing.
  const id = url.split("/").pop();
  const forged = await page.evaluate(async (path) => {
    const answer = await fetch(path, { method: "POST", body: new URLSearchParams({ csrf: "guess" }) });
    return answer.status;
  }, `/dashboard/hooks/${id}/enable`);
  assert.equal(forged, 403);
  assert.equal(await sendGithub(url, secret, "issues", "issues.opened.json", issue), 409);

  // Narrow screens get the same pages, keyboard first.
  await page.setViewportSize({ width: 390, height: 844 });
  await page.goto(`${base}/dashboard/hooks`);
  await page.keyboard.press("Tab");
  assert.equal(await page.evaluate(() => document.activeElement.textContent), "Skip to content");
  const width = await page.evaluate(() => document.documentElement.scrollWidth);
  assert.ok(width <= 390, `no sideways scrolling at phone width (${width}px)`);
  await shot(page, "hooks-phone");
  assert.deepEqual(outside, [], "no request leaves this server");
  await context.close();
});

test("a waiting workflow gate is approved from the runs page", async () => {
  const made = await api("POST", "/api/workflows", {
    name: "release",
    agent: "builder",
    steps: [{ name: "publish", tool: "emit_event", args: { event: "custom.released" }, requires_approval: true }],
  });
  assert.equal(made.status, 201, JSON.stringify(made.body));
  const started = await fetch(`${base}/webhooks/release`, { method: "POST", headers: { "content-type": "application/json" }, body: "{}" });
  assert.equal(started.status, 202);
  const { run_id: run } = await started.json();
  const context = await browser.newContext();
  const page = await context.newPage();
  await signIn(page, TOKEN, "/dashboard/runs");
  const row = page.locator(`tr[data-run="${run}"]`);
  await row.getByRole("button", { name: "Approve" }).click();
  await page.waitForURL(`${base}/dashboard/runs`);
  // The run finishes after the answer; the page shows it without a reload.
  await row.locator(".badge", { hasText: "succeeded" }).waitFor({ timeout: WAIT });
  const shown = await api("GET", `/api/runs/${run}`);
  assert.equal(shown.body.status, "succeeded");
  await shot(page, "runs");
  await page.goto(`${base}/dashboard/audit`);
  await page.getByRole("cell", { name: "runs.approve" }).first().waitFor({ timeout: WAIT });
  await shot(page, "audit");
  await context.close();
});

test("subscriptions show their last day and pause from the page", async () => {
  for (let i = 0; i < 6; i += 1) {
    const sent = await api("POST", "/api/events", { event: "custom.build", data: { n: i } });
    assert.equal(sent.status, 202, JSON.stringify(sent.body));
  }
  const context = await browser.newContext({ viewport: { width: 1280, height: 900 } });
  const page = await context.newPage();
  await signIn(page, TOKEN, "/dashboard/subscriptions");
  const card = page.locator("section.card", { hasText: "Audit trail" });
  // Attempts land after the API's answers; the page follows them live.
  await card.locator("dd", { hasText: "6 attempts" }).waitFor({ timeout: WAIT });
  assert.match(await card.textContent(), /66\.7% succeeded/);
  assert.equal(await card.locator("svg rect[fill='#c92a2a']").count(), 1, "one hour with failures");
  await shot(page, "subscriptions");
  await card.getByRole("button", { name: "Pause" }).click();
  await card.getByRole("button", { name: "Resume" }).waitFor({ timeout: WAIT });
  const subs = await api("GET", "/api/webhooks?type=outgoing");
  assert.equal(subs.body.items[0].paused, true);
  await card.getByRole("button", { name: "Resume" }).click();
  await card.getByRole("button", { name: "Pause" }).waitFor({ timeout: WAIT });
  await page.goto(`${base}/dashboard/agents`);
  await shot(page, "agents");
  await page.goto(`${base}/dashboard/tasks`);
  await shot(page, "tasks");
  await context.close();
});

test("a read-only token sees the pages with no change it can make", async () => {
  const made = await api("POST", "/api/tokens", { name: "viewer", scope: "read" });
  assert.equal(made.status, 201, JSON.stringify(made.body));
  const context = await browser.newContext();
  const page = await context.newPage();
  await signIn(page, made.body.token);
  const hooks = await api("GET", "/api/webhooks");
  const pages = [
    "/dashboard/hooks", `/dashboard/hooks/${hooks.body.items[0].id}`, "/dashboard/hooks/new",
    "/dashboard/subscriptions", "/dashboard/agents", "/dashboard/tasks", "/dashboard/runs",
  ];
  for (const path of pages) {
    await page.goto(`${base}${path}`);
    const enabled = await page.locator('main form[method="post"] button:not([disabled])').count();
    assert.equal(enabled, 0, `${path} has a change control a read-only token could use`);
  }
  await context.close();
});

test("an expired session returns to sign-in and then to the page", async () => {
  const context = await browser.newContext();
  const page = await context.newPage();
  // No session at all behaves as an expired one.
  await page.goto(`${base}/dashboard/audit`);
  assert.match(page.url(), /\/dashboard\/login\?next=%2Fdashboard%2Faudit$/);
  await page.getByLabel("API token").fill(TOKEN);
  await page.getByRole("button", { name: "Sign in" }).click();
  await page.waitForURL(`${base}/dashboard/audit`);
  await context.close();
});
