// The keyplane console in a real browser: Debian's chromium driven by playwright-core, every page
// checked by axe-core (no serious or critical violations), a screenshot of each page.
//
// Starts `keyplane serve --tls-self-signed --console-listen 127.0.0.1:0` on a data directory made
// here (KP_CLI: the keyplane binary; KP_WORK: an empty directory; KP_SCREENSHOTS: where the
// screenshots go), with a credential for the account root, then: signs in; creates a key with an
// alias; edits its policy (a malformed policy shows the engine's message beside the text, then a
// good one is saved); disables the key and sees an API Encrypt (the AWS SDK for JavaScript, signed
// with the same credential) refused with DisabledException; schedules and cancels its deletion;
// finds each of those actions in the audit view (with the console as their source) and opens a
// record; checks the chain verification; watches the throughput chart draw; signs out. Prints
// `ok NAME` or `FAIL NAME: why` per check and exits non-zero on any failure.
import { spawn, execFileSync } from "node:child_process";
import { createInterface } from "node:readline";
import { mkdirSync, readFileSync } from "node:fs";
import { createRequire } from "node:module";
import https from "node:https";
import path from "node:path";
import { chromium } from "playwright-core";
import { KMSClient, EncryptCommand, DescribeKeyCommand } from "@aws-sdk/client-kms";
import { NodeHttpHandler } from "@smithy/node-http-handler";

const require = createRequire(import.meta.url);
const cli = process.env.KP_CLI;
const work = process.env.KP_WORK;
const shots = process.env.KP_SCREENSHOTS;
if (!cli || !work || !shots) {
  console.log("FAIL setup: KP_CLI, KP_WORK and KP_SCREENSHOTS must be set");
  process.exit(1);
}
mkdirSync(shots, { recursive: true });
const dataDir = path.join(work, "data");
const root = "arn:aws:iam::111122223333:root";

let failures = 0;
function check(name, ok, why = "") {
  if (ok) {
    console.log(`ok ${name}`);
  } else {
    failures += 1;
    console.log(`FAIL ${name}${why ? `: ${why}` : ""}`);
  }
}

const kp = (...args) => execFileSync(cli, ["--data-dir", dataDir, ...args], { encoding: "utf8" });
kp("store", "init");
const cred = JSON.parse(kp("--json", "credentials", "create", "--principal", root));

// The server, its startup events as JSON lines.
const server = spawn(cli, ["--json", "--data-dir", dataDir, "serve", "--tls-self-signed",
  "--listen", "127.0.0.1:0", "--console-listen", "127.0.0.1:0"], { stdio: ["ignore", "pipe", "inherit"] });
const events = {};
await new Promise((resolve, reject) => {
  const lines = createInterface({ input: server.stdout });
  const timer = setTimeout(() => reject(new Error("server not ready in 60 s")), 60000);
  lines.on("line", (line) => {
    const e = JSON.parse(line);
    events[e.event] = e;
    if (e.event === "ready") {
      clearTimeout(timer);
      resolve();
    }
  });
  server.on("exit", (rc) => reject(new Error(`server exited (rc ${rc})`)));
});
const consoleUrl = events.console && events.console.url;
check("serve --console-listen announces the console over TLS", /^https:\/\/127\.0\.0\.1:\d+$/.test(consoleUrl || ""), consoleUrl);

const kms = new KMSClient({
  endpoint: events.listening.url,
  region: "us-east-1",
  maxAttempts: 1,
  credentials: { accessKeyId: cred.AccessKeyId, secretAccessKey: cred.SecretAccessKey },
  requestHandler: new NodeHttpHandler({
    httpsAgent: new https.Agent({ ca: readFileSync(events.tls.certificate) }),
  }),
});

const browser = await chromium.launch({
  executablePath: process.env.KP_CHROMIUM || "/usr/bin/chromium",
  args: ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
    "--disable-background-networking", "--disable-component-update", "--disable-sync"],
});
// The certificate is the server's own self-signed one (trusted by the API client above).
const context = await browser.newContext({ ignoreHTTPSErrors: true, viewport: { width: 1280, height: 900 } });
const page = await context.newPage();
const axePath = require.resolve("axe-core/axe.min.js");
let shot = 0;
let cspBlockedInline = null;

// axe-core on the page as it is: no serious or critical violations. Then a full-page screenshot.
async function inspect(name) {
  shot += 1;
  const file = path.join(shots, `${String(shot).padStart(2, "0")}-${name}.png`);
  await page.screenshot({ path: file, fullPage: true });
  // axe from node_modules with addScriptTag({path}), which inlines it: the console's CSP
  // (script-src 'self') must block that, so axe is then evaluated through the DevTools protocol,
  // which page CSP does not govern.
  await page.addScriptTag({ path: axePath }).catch(() => {});
  if (!(await page.evaluate(() => typeof window.axe !== "undefined"))) {
    cspBlockedInline = true;
    await page.evaluate(readFileSync(axePath, "utf8"));
  } else {
    cspBlockedInline = false;
  }
  let results;
  results = await page.evaluate(async () => {
    const r = await window.axe.run(document, { resultTypes: ["violations"] });
    return r.violations.map((v) => ({ id: v.id, impact: v.impact, nodes: v.nodes.length, help: v.help }));
  });
  const bad = results.filter((v) => v.impact === "serious" || v.impact === "critical");
  check(`axe-core: no serious or critical violations on ${name}`, bad.length === 0,
    bad.map((v) => `${v.id} (${v.impact}, ${v.nodes} nodes): ${v.help}`).join("; "));
  const minor = results.filter((v) => !bad.includes(v));
  if (minor.length) {
    console.log(`   (axe, minor/moderate on ${name}: ${minor.map((v) => v.id).join(", ")})`);
  }
}

const text = async (selector) => (await page.locator(selector).first().innerText()).trim();

try {
  // 1. No session: the sign-in page.
  await page.goto(`${consoleUrl}/keys`);
  check("without a session the console shows the sign-in page", page.url().endsWith("/sign-in"), page.url());
  await inspect("sign-in");
  check("the Content-Security-Policy blocks an injected inline script", cspBlockedInline === true);
  const cookiesBefore = await context.cookies();
  check("no cookie before sign-in", cookiesBefore.length === 0);

  // A wrong secret.
  await page.fill("#access_key_id", cred.AccessKeyId);
  await page.fill("#secret_access_key", "x".repeat(40));
  await page.click("button[type=submit]");
  check("a wrong secret is refused on the sign-in page", (await page.locator("#sign-in-error").count()) === 1);
  await inspect("sign-in-refused");

  // 2. Sign in (keyboard: Enter submits).
  await page.fill("#access_key_id", cred.AccessKeyId);
  await page.fill("#secret_access_key", cred.SecretAccessKey);
  await page.press("#secret_access_key", "Enter");
  await page.waitForURL(/\/keys$/);
  check("signed in: the keys list", (await text("h1")) === "Keys");
  const cookies = await context.cookies();
  const session = cookies.find((c) => c.name === "__Host-kp_console");
  check("the session cookie is __Host-, HttpOnly, Secure, SameSite=Strict, Path=/",
    session && session.httpOnly && session.secure && session.sameSite === "Strict" && session.path === "/",
    JSON.stringify(cookies));
  check("the session cookie is not readable by scripts",
    (await page.evaluate(() => document.cookie)).indexOf("kp_console") === -1);
  await inspect("keys-empty");

  // 3. Create a key with an alias.
  await page.click("nav >> text=Create key");
  await inspect("create-key");
  await page.selectOption("#spec", "SYMMETRIC_DEFAULT");
  await page.selectOption("#usage", "ENCRYPT_DECRYPT");
  await page.fill("#description", "made in the browser test <b>not bold</b>");
  await page.fill("#alias", "alias/console-browser-test");
  await page.fill("#tag_key", "team");
  await page.fill("#tag_value", "key-admins");
  await page.click("form.stack button[type=submit]");
  await page.waitForURL(/\/key\?id=/);
  const keyId = new URL(page.url()).searchParams.get("id");
  check("create: the new key's page", /^[0-9a-f-]{36}$/.test(keyId || ""), page.url());
  check("create: the alias is listed", (await page.locator("section[aria-labelledby=h-aliases]").innerText()).includes("alias/console-browser-test"));
  check("create: the description is shown as text, not markup",
    (await page.locator("section[aria-labelledby=h-metadata]").innerText()).includes("<b>not bold</b>"));
  await inspect("key");

  // The keys list finds it by alias and by tag.
  await page.goto(`${consoleUrl}/keys?by=alias&q=console-browser`);
  check("keys list: search by alias finds the key", (await page.locator("table").innerText()).includes(keyId));
  await page.goto(`${consoleUrl}/keys?by=tag&q=key-admins&state=Enabled`);
  check("keys list: search by tag and state finds the key", (await page.locator("table").innerText()).includes(keyId));
  await inspect("keys-search");

  // 4. Edit the policy: a malformed one shows the engine's message beside the text.
  await page.goto(`${consoleUrl}/key?id=${keyId}`);
  await page.click("text=Edit the key policy");
  await page.waitForURL(/\/key\/policy\?id=/);
  const goodPolicy = await page.inputValue("#policy");
  await inspect("policy-editor");
  await page.fill("#policy", '{"Version": "2012-10-17", "Statement": [');
  await page.click("form.policy-form button[type=submit]");
  const policyError = await text("#policy-error");
  check("policy: a malformed policy shows MalformedPolicyDocumentException beside the text",
    policyError.includes("MalformedPolicyDocumentException"), policyError);
  check("policy: the text typed is kept", (await page.inputValue("#policy")).startsWith('{"Version"'));
  await inspect("policy-refused");
  const edited = JSON.parse(goodPolicy);
  edited.Statement[0].Sid = "Console edit";
  await page.fill("#policy", JSON.stringify(edited, null, 2));
  await page.click("form.policy-form button[type=submit]");
  await page.waitForURL(/done=policy/);
  check("policy: a good policy is saved", (await page.locator("#policy-text").innerText()).includes("Console edit"));

  // 5. Disable, confirmed; then an API Encrypt is refused.
  await page.click("button:has-text('Disable key')");
  await page.waitForURL(/\/key\/confirm/);
  await inspect("confirm-disable");
  await page.click("form[action='/key/action'] button.danger");
  await page.waitForURL(/done=disable/);
  check("disable: the key is Disabled", (await page.locator("section[aria-labelledby=h-metadata]").innerText()).includes("Disabled"));
  let refusal = "";
  try {
    await kms.send(new EncryptCommand({ KeyId: keyId, Plaintext: Buffer.from("secret") }));
    refusal = "accepted";
  } catch (e) {
    refusal = e.name;
  }
  check("disable: an API Encrypt with the key is refused (DisabledException)", refusal === "DisabledException", refusal);

  // 6. Schedule deletion (confirmed), then cancel it.
  await page.fill("#days", "7");
  await page.click("button:has-text('Schedule deletion')");
  await page.waitForURL(/\/key\/confirm/);
  await inspect("confirm-deletion");
  await page.click("form[action='/key/action'] button.danger");
  await page.waitForURL(/done=schedule-deletion/);
  check("schedule deletion: PendingDeletion", (await page.locator("section[aria-labelledby=h-metadata]").innerText()).includes("PendingDeletion"));
  await inspect("key-pending-deletion");
  await page.click("button:has-text('Cancel deletion')");
  await page.waitForURL(/done=cancel-deletion/);
  check("cancel deletion: Disabled again", (await page.locator("section[aria-labelledby=h-metadata]").innerText()).includes("Disabled"));

  // 7. The audit view has every action, from the console, as the root principal.
  await page.click("nav >> text=Audit");
  await page.fill("#aq", keyId);
  await page.click("form[role=search] button");
  await page.waitForURL(/\/audit\?/);
  const rows = await page.locator("#audit-table tbody tr").allInnerTexts();
  const has = (op, outcome = "OK", source = "keyplane-console") =>
    rows.some((r) => r.includes(op) && r.includes(outcome) && r.includes(source) && r.includes(root));
  for (const op of ["CreateKey", "PutKeyPolicy", "DisableKey", "ScheduleKeyDeletion", "CancelKeyDeletion"]) {
    check(`audit: ${op} by the root principal from the console`, has(op), `${rows.length} rows`);
  }
  check("audit: the API Encrypt's DisabledException (not from the console)",
    rows.some((r) => r.includes("Encrypt") && r.includes("DisabledException") && !r.includes("keyplane-console")));
  await inspect("audit");
  await page.goto(`${consoleUrl}/audit?op=PutKeyPolicy&outcome=error`);
  const refusedPolicy = await page.locator("#audit-table tbody").innerText();
  check("audit: the refused PutKeyPolicy, with its error", refusedPolicy.includes("MalformedPolicyDocumentException"), refusedPolicy);
  await page.goto(`${consoleUrl}/audit?op=CreateAlias`);
  check("audit: CreateAlias", (await page.locator("#audit-table tbody").innerText()).includes("CreateAlias"));
  await page.click("#audit-table tbody a >> nth=0");
  await page.waitForURL(/\/audit\/record/);
  const record = JSON.parse(await page.locator("#record-json").innerText());
  check("audit: a record's full JSON", record.eventName === "CreateAlias" && String(record.userAgent).startsWith("keyplane-console/"), JSON.stringify(record).slice(0, 200));
  await inspect("audit-record");
  await page.goto(`${consoleUrl}/audit/verify`);
  const verdict = await text("#audit-verdict");
  check("audit: the chain verifies (as keyplane audit verify reports)", verdict.startsWith("INTACT") || verdict.startsWith("UNSIGNED_TAIL"), verdict);
  await inspect("audit-verify");

  // 8. Throughput: the chart draws from the metrics endpoint while API calls run.
  await page.goto(`${consoleUrl}/metrics`);
  const busy = (async () => {
    for (let i = 0; i < 40; i++) {
      await kms.send(new DescribeKeyCommand({ KeyId: keyId }));
      await new Promise((r) => setTimeout(r, 100));
    }
  })();
  await page.waitForSelector("#legend li", { timeout: 15000 }).catch(() => {});
  await busy;
  await page.waitForTimeout(2500);
  const legend = await page.locator("#legend").innerText();
  check("throughput: the live chart shows DescribeKey", legend.includes("DescribeKey"), legend);
  const drawn = await page.evaluate(() => {
    const c = document.getElementById("rps-chart");
    const d = c.getContext("2d").getImageData(0, 0, c.width, c.height).data;
    let colored = 0;
    for (let i = 0; i < d.length; i += 4) if (d[i + 3] > 0 && !(d[i] === d[i + 1] && d[i + 1] === d[i + 2])) colored++;
    return colored;
  });
  check("throughput: the chart has a drawn series", drawn > 50, `${drawn} colored pixels`);
  await inspect("throughput");

  // 9. Narrow screen: the key page still fits (no horizontal scroll of the page itself).
  await page.setViewportSize({ width: 360, height: 800 });
  await page.goto(`${consoleUrl}/key?id=${keyId}`);
  const overflow = await page.evaluate(() => document.documentElement.scrollWidth - window.innerWidth);
  check("narrow screen (360 px): the key page does not scroll sideways", overflow <= 1, `${overflow} px`);
  await inspect("key-narrow");
  await page.setViewportSize({ width: 1280, height: 900 });

  // 10. Keyboard: the skip link is the first stop and shows focus.
  await page.goto(`${consoleUrl}/keys`);
  await page.keyboard.press("Tab");
  const focused = await page.evaluate(() => document.activeElement && document.activeElement.textContent);
  check("keyboard: the first Tab stop is the skip link", (focused || "").includes("Skip to content"), focused);

  // 11. Sign out: the session is gone.
  await page.click("button:has-text('Sign out')");
  await page.waitForURL(/\/sign-in$/);
  await page.goto(`${consoleUrl}/keys`);
  check("sign out: the console asks to sign in again", page.url().endsWith("/sign-in"), page.url());
} catch (e) {
  failures += 1;
  console.log(`FAIL flow: ${e && e.stack}`);
  await page.screenshot({ path: path.join(shots, "failure.png"), fullPage: true }).catch(() => {});
} finally {
  await browser.close();
  server.kill("SIGTERM");
  await new Promise((r) => server.on("exit", r));
}

// After a clean stop the audit log verifies end to end.
try {
  kp("audit", "verify");
  check("keyplane audit verify after stop", true);
} catch (e) {
  check("keyplane audit verify after stop", false, String(e.stdout || e.message).slice(0, 300));
}
console.log(`console: screenshots in ${shots}`);
console.log(failures === 0 ? "console: all checks passed" : `console: ${failures} failed`);
process.exit(failures === 0 ? 0 : 1);
