// The demo page's script (bundled into dist/app.js): a shared todo list on actor
// `todo/shared`, the example `order` workflow followed through its progress actor, the
// connection state and a live log of frames. Plain DOM, no framework.
//
// Query parameters: `?ws=` a WebSocket URL (ws:// or wss://) or a stage name (default
// `local`, on this page's host); `?token=` a bearer token; `?actor=` another todo actor.

import { connect, StatecastError, type Change, type ConnectionState } from "../../../clients/typescript/src/index.js";

/** The stage path statecast-local serves its WebSocket API on. */
const STAGE = "local";
const LOG_LIMIT = 300;

interface Todo {
  title: string;
  done: boolean;
}
interface TodoState {
  items?: Record<string, Todo>;
  nextId?: number;
}
interface StepProgress {
  status?: string;
  attempts?: number;
  error?: string;
  [key: string]: unknown;
}
interface WorkflowProgress {
  workflow?: string;
  status?: string;
  cause?: string;
  steps?: Record<string, StepProgress>;
}

const params = new URLSearchParams(location.search);

/** `?ws=` as a full URL, or as a stage on this page's host; else `ws://<host>/local`. */
function socketUrl(loc: Pick<Location, "host" | "protocol">, wsParam: string | null): string {
  if (wsParam !== null && /^wss?:\/\//.test(wsParam)) return wsParam;
  const stage = (wsParam ?? STAGE).replace(/^\/+/, "");
  const host = loc.host === "" ? "127.0.0.1:8787" : loc.host;
  return `${loc.protocol === "https:" ? "wss" : "ws"}://${host}/${stage}`;
}

const $ = <T extends HTMLElement = HTMLElement>(id: string): T => {
  const element = document.getElementById(id);
  if (element === null) throw new Error(`#${id} missing from the page`);
  return element as T;
};

function el<K extends keyof HTMLElementTagNameMap>(tag: K, props: Partial<HTMLElementTagNameMap[K]> = {}, ...children: (Node | string)[]): HTMLElementTagNameMap[K] {
  const element = Object.assign(document.createElement(tag), props);
  element.append(...children);
  return element;
}

const url = socketUrl(location, params.get("ws"));
const token = params.get("token") ?? undefined;
const todoActor = params.get("actor") ?? "todo/shared";
const client = connect(url, token === undefined ? {} : { token });

// ---- connection, toast, log ----

$("url").textContent = url;
$("actor").textContent = todoActor;

function showConnection(state: ConnectionState): void {
  const badge = $("conn");
  badge.textContent = state;
  badge.className = `badge ${state}`;
}
showConnection(client.state);
client.on("state", showConnection);

let toastTimer: ReturnType<typeof setTimeout> | undefined;
function toast(message: string): void {
  const box = $("toast");
  box.textContent = message;
  box.style.display = "block";
  clearTimeout(toastTimer);
  toastTimer = setTimeout(() => (box.style.display = "none"), 4_000);
}

function explain(error: unknown): string {
  if (error instanceof StatecastError) return `${error.code}: ${error.message}${error.requestId === undefined ? "" : ` (request ${error.requestId})`}`;
  return error instanceof Error ? error.message : String(error);
}

/** Requests sent from this page and not answered yet (re-sent after a reconnect). */
let pending = 0;
function showPending(): void {
  $("pending").textContent = pending === 0 ? "" : `${pending} pending`;
  document.body.dataset.pending = String(pending);
}
showPending();

/** Runs a request, counting it while pending and reporting its failure. */
function attempt(work: Promise<unknown>): void {
  pending += 1;
  showPending();
  work
    .catch((error: unknown) => toast(explain(error)))
    .finally(() => {
      pending -= 1;
      showPending();
    });
}

const log = $("log");
const pause = $<HTMLInputElement>("log-pause");
function logFrame(direction: "in" | "out", frame: Record<string, unknown>): void {
  if (pause.checked) return;
  const text = JSON.stringify(frame);
  const time = new Date().toLocaleTimeString(undefined, { hour12: false });
  const cls = frame.type === "error" ? "err" : direction;
  const line = el("li", { title: text }, el("span", { className: "t", textContent: `${time} ` }), el("span", { className: cls, textContent: `${direction === "in" ? "←" : "→"} ${text.length > 400 ? `${text.slice(0, 400)}…` : text}` }));
  const atBottom = log.scrollTop + log.clientHeight >= log.scrollHeight - 4;
  log.append(line);
  while (log.childElementCount > LOG_LIMIT) log.firstElementChild?.remove();
  if (atBottom) log.scrollTop = log.scrollHeight;
}
client.on("frame", (frame) => logFrame("in", frame));
client.on("send", (frame) => logFrame("out", frame));
client.on("error", (error) => toast(explain(error)));
$("log-clear").addEventListener("click", () => log.replaceChildren());

// ---- todo list ----

const list = $("todos");
const rows = new Map<string, { row: HTMLLIElement; box: HTMLInputElement; title: HTMLSpanElement }>();
let editing: string | undefined;

function byId(a: string, b: string): number {
  return Number(a) - Number(b) || a.localeCompare(b);
}

function renderTodos(state: TodoState, change: Change): void {
  $("version").textContent = String(change.version);
  const items = state.items ?? {};
  const ids = Object.keys(items).sort(byId);
  for (const [id, { row }] of rows) {
    if (!(id in items)) {
      row.remove();
      rows.delete(id);
      // A removed row takes its rename input along, and not every browser fires `blur` for a
      // removed focused element (Chromium does): forget the edit, or no title could be renamed again.
      if (editing === id) editing = undefined;
    }
  }
  list.querySelector(".empty")?.remove();
  ids.forEach((id, position) => {
    const item = items[id];
    if (item === undefined) return;
    const entry = rows.get(id) ?? makeRow(id);
    entry.row.classList.toggle("done", item.done);
    entry.box.checked = item.done;
    if (editing !== id) entry.title.textContent = item.title;
    // Insert only rows out of place: moving a row would blur a title being renamed.
    const at = list.children[position];
    if (at !== entry.row) list.insertBefore(entry.row, at ?? null);
  });
  const done = ids.filter((id) => items[id]?.done).length;
  $("count").textContent = ids.length === 0 ? "" : `${ids.length - done} left · ${done} done`;
  if (ids.length === 0) list.append(el("li", { className: "empty", textContent: "Nothing yet: add the first item." }));
}

function makeRow(id: string) {
  const box = el("input", { type: "checkbox", title: "toggle" });
  box.addEventListener("change", () => {
    box.checked = !box.checked; // the server's delta flips it: the page shows only replicated state
    attempt(client.call(todoActor, "toggle", { id }));
  });
  const title = el("span", { className: "title", title: "double-click to rename" });
  title.addEventListener("dblclick", () => rename(id, title));
  const remove = el("button", { className: "icon", type: "button", title: "remove", textContent: "×" });
  remove.addEventListener("click", () => attempt(client.call(todoActor, "remove", { id })));
  const row = el("li", {}, box, title, remove);
  row.dataset.id = id; // `li[data-id]`: what the browser test finds an item by
  row.dataset.testid = "todo";
  const entry = { row, box, title };
  rows.set(id, entry);
  return entry;
}

function rename(id: string, title: HTMLSpanElement): void {
  if (editing !== undefined) return;
  editing = id;
  const before = title.textContent ?? "";
  const input = el("input", { type: "text", value: before, maxLength: 200 });
  title.replaceChildren(input);
  input.focus();
  input.select();
  const finish = (save: boolean) => {
    if (editing !== id) return;
    editing = undefined;
    const after = input.value.trim();
    title.textContent = save && after !== "" ? after : before;
    if (save && after !== "" && after !== before) attempt(client.call(todoActor, "rename", { id, title: after }));
  };
  input.addEventListener("keydown", (event) => {
    if (event.key === "Enter") finish(true);
    if (event.key === "Escape") finish(false);
  });
  input.addEventListener("blur", () => finish(true));
}

$("add").addEventListener("submit", (event) => {
  event.preventDefault();
  const input = $<HTMLInputElement>("title");
  const title = input.value.trim();
  if (title === "") return;
  input.value = "";
  attempt(client.call(todoActor, "add", { title }));
});
$("clear").addEventListener("click", () => attempt(client.call(todoActor, "clear_done")));

client.subscribe<TodoState>(todoActor, (state, change) => renderTodos(state ?? {}, change));

// ---- order workflow ----

const STEPS = ["reserve", "charge", "ship"];
let following: { workflowId: string; unsubscribe: () => void } | undefined;

function badge(status: string | undefined): HTMLSpanElement {
  return el("span", { className: `badge ${status ?? ""}`, textContent: status ?? "–" });
}

function renderWorkflow(progress: WorkflowProgress): void {
  const status = progress.status ?? "–";
  $("wf-status").replaceWith(Object.assign(badge(status), { id: "wf-status" }));
  const steps = progress.steps ?? {};
  const names = [...STEPS.filter((n) => n in steps), ...Object.keys(steps).filter((n) => !STEPS.includes(n))];
  $("wf-steps").replaceChildren(
    ...names.map((name) => {
      const step = steps[name] ?? {};
      const detail = [step.attempts === undefined ? "" : `attempts ${step.attempts}`, typeof step.error === "string" ? step.error : ""].filter(Boolean).join(" · ");
      return el("div", { className: "step" }, el("b", { textContent: name }), badge(step.status), el("small", { textContent: detail }));
    }),
  );
  $("wf-cause").textContent = progress.cause ?? "";
  $("wf-state").textContent = JSON.stringify(progress, null, 2);
  $<HTMLButtonElement>("wf-cancel").disabled = !(status === "running" || status === "waiting");
}

$("wf").addEventListener("submit", (event) => {
  event.preventDefault();
  const input = {
    sku: $<HTMLInputElement>("wf-sku").value,
    quantity: Number($<HTMLInputElement>("wf-qty").value),
    amount: Number($<HTMLInputElement>("wf-amount").value),
  };
  attempt(
    client.startWorkflow("order", input).then((started) => {
      following?.unsubscribe();
      $("wf-id").textContent = started.workflowId;
      renderWorkflow({ status: "starting" });
      // A refused subscription reaches the client's "error" event, shown as a toast.
      const unsubscribe = client.subscribe<WorkflowProgress>(started.actor, (progress) => renderWorkflow(progress ?? {}));
      following = { workflowId: started.workflowId, unsubscribe };
    }),
  );
});

$("wf-cancel").addEventListener("click", () => {
  if (following !== undefined) attempt(client.cancelWorkflow(following.workflowId));
});
