// The local inspector (`/_inspector`) in a real browser: Debian's Chromium driven by
// playwright-core opens it on a statecast-local started here while a plain WebSocket client
// subscribes, calls and starts the `order` workflow. The page must show that client's
// connection (tenant, subscription), the actor it changed, the call, the frames, both stream
// mappings and the workflow's step graph run to `succeeded`; the screenshot goes to
// target/e2e/inspector.png. Run with `npm run test:browser` (CHROMIUM=/path overrides the browser).

import assert from "node:assert/strict";
import { existsSync, mkdirSync } from "node:fs";
import { join } from "node:path";
import { after, before, describe, test } from "node:test";

import { chromium, type Browser, type Page } from "playwright-core";

import { LocalStack, nodeWebSocket, repoRoot, waitFor } from "../support/stack.js";

const CHROMIUM = process.env.CHROMIUM ?? "/usr/bin/chromium";
const ACTOR = "counter/inspected";

/** A raw client: sends frames, answers each `request` with the reply carrying its id. */
class RawClient {
  private readonly socket: WebSocket;
  private readonly waiting = new Map<string, (frame: Record<string, unknown>) => void>();

  private constructor(socket: WebSocket) {
    this.socket = socket;
    socket.addEventListener("message", (event) => {
      const frame = JSON.parse(String(event.data)) as Record<string, unknown>;
      const id = frame["id"];
      if (typeof id === "string" && frame["type"] !== "delta") this.waiting.get(id)?.(frame);
    });
  }

  static open(url: string): Promise<RawClient> {
    const WS = nodeWebSocket();
    const socket = new WS(url);
    return new Promise((resolve, reject) => {
      socket.addEventListener("open", () => resolve(new RawClient(socket)));
      socket.addEventListener("error", () => reject(new Error(`cannot connect to ${url}`)));
    });
  }

  request(frame: Record<string, unknown> & { id: string }): Promise<Record<string, unknown>> {
    return new Promise((resolve) => {
      this.waiting.set(frame.id, resolve);
      this.socket.send(JSON.stringify(frame));
    });
  }

  close(): void {
    this.socket.close();
  }
}

describe("inspector page in Chromium", () => {
  const stack = new LocalStack();
  let browser: Browser | undefined;
  let page: Page | undefined;
  let client: RawClient | undefined;
  const pageErrors: string[] = [];

  before(async () => {
    if (!existsSync(CHROMIUM)) {
      throw new Error(`${CHROMIUM} is missing: apt-get install -y chromium (or set CHROMIUM=/path/to/chromium)`);
    }
    const { ws, page: pageUrl } = await stack.start();
    browser = await chromium.launch({
      executablePath: CHROMIUM,
      headless: true,
      args: ["--no-sandbox", "--headless", "--disable-gpu", "--no-first-run", "--disable-background-networking", "--disable-component-update", "--disable-sync"],
    });
    page = await (await browser.newContext({ viewport: { width: 1400, height: 1100 } })).newPage();
    page.on("pageerror", (error) => pageErrors.push(error.message));
    await page.goto(new URL("/_inspector", pageUrl).href);
    client = await RawClient.open(ws);
  });

  after(async () => {
    client?.close();
    await browser?.close();
    await stack.stop();
  });

  test("shows the connection, the actor, the call, the frames, the mappings and the workflow graph", async () => {
    assert.ok(page !== undefined && client !== undefined);
    const p = page;
    assert.equal(await p.textContent("h1"), "Statecast inspector");
    const subscribed = await client.request({ action: "subscribe", id: "s", actor: ACTOR });
    assert.equal(subscribed["type"], "subscribed");
    const result = await client.request({ action: "call", id: "c", actor: ACTOR, method: "increment", args: {} });
    assert.equal(result["type"], "result");
    const started = await client.request({ action: "workflow.start", id: "w", workflow: "order", input: { sku: "A-1", quantity: 1, amount: 10 } });
    const workflowId = (started["value"] as { workflowId: string }).workflowId;

    const shot = join(repoRoot(), "target", "e2e", "inspector.png");
    mkdirSync(join(repoRoot(), "target", "e2e"), { recursive: true });
    try {
      await waitFor("the workflow graph to show every step succeeded", async () =>
        (await p.locator(`.workflow[data-workflow="${workflowId}"][data-status="succeeded"] .step[data-status="succeeded"]`).count()) === 3,
      { timeoutMs: 30_000 });
      await waitFor("the actor at version 1", async () => (await p.locator(`#actors tr[data-actor="dev/${ACTOR}"][data-version="1"]`).count()) === 1);
    } finally {
      await p.screenshot({ path: shot, fullPage: true });
      console.log(`# screenshot: ${shot}`);
    }

    const connection = p.locator("#connections tbody tr[data-connection]");
    assert.equal(await connection.count(), 1);
    const cells = await connection.locator("td").allTextContents();
    assert.equal(cells[1], "dev", "the connection's tenant");
    assert.equal(cells[2], ACTOR, "its subscription");
    assert.match((await p.locator(`#actors tr[data-actor="dev/${ACTOR}"]`).textContent()) ?? "", /"value":1/);
    assert.match((await p.locator("#calls tbody tr").first().textContent()) ?? "", /counter\/inspected\.increment\(\{\}\).*v1 → 1/);
    assert.ok((await p.locator('#frames tr[data-direction="push"]').count()) >= 1, "a frame the fan-out pushed");
    assert.ok((await p.locator('#frames tr[data-direction="in"]').count()) >= 3, "the client's frames");
    for (const mapping of ["actors", "workflows"]) {
      const row = p.locator(`#mappings tr[data-mapping="${mapping}"]`);
      assert.equal(await row.count(), 1, mapping);
      assert.equal(await row.getAttribute("data-failed"), "0");
      assert.match((await row.textContent()) ?? "", /empty/, `${mapping}: nothing on the on-failure destination`);
    }
    const steps = await p.$$eval(`.workflow[data-workflow="${workflowId}"] .step`, (els) =>
      els.map((e) => `${e.getAttribute("data-step")}:${e.getAttribute("data-status")}:${e.getAttribute("data-attempts")}`));
    assert.deepEqual(steps, ["reserve:succeeded:1", "charge:succeeded:1", "ship:succeeded:1"]);
    assert.deepEqual(pageErrors, []);
  });
});
