// Test support for the integration and browser tests: starts the real local stack
// (`target/debug/statecast-local --port P --data FILE`), reads its banner for the URLs, kills
// it (SIGKILL) and restarts it on the same port and data file; a raw WebSocket reader of an
// actor's stored state (a fresh `subscribe`, independent of the client under test); and
// condition polling with a deadline (the tests never sleep for a fixed time).

import { spawn, type ChildProcess } from "node:child_process";
import { existsSync, mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { dirname, join, resolve } from "node:path";
import { fileURLToPath } from "node:url";

/** The repository root: the first ancestor of this file holding `Cargo.toml` and `clients/`. */
export function repoRoot(): string {
  let dir = dirname(fileURLToPath(import.meta.url));
  for (;;) {
    if (existsSync(join(dir, "Cargo.toml")) && existsSync(join(dir, "clients"))) return dir;
    const parent = dirname(dir);
    if (parent === dir) throw new Error("cannot find the repository root above " + fileURLToPath(import.meta.url));
    dir = parent;
  }
}

/** `STATECAST_LOCAL_BIN`, else `<repo>/target/debug/statecast-local`; throws when missing. */
export function localBinary(): string {
  const bin = process.env.STATECAST_LOCAL_BIN ?? join(repoRoot(), "target", "debug", "statecast-local");
  if (!existsSync(bin)) {
    throw new Error(`${bin} is missing: run \`cargo build -p statecast-local\` at the repository root first (or set STATECAST_LOCAL_BIN)`);
  }
  return resolve(bin);
}

/** The global WebSocket (Node 20: run node with `--experimental-websocket`). */
export function nodeWebSocket(): typeof WebSocket {
  const WS = (globalThis as { WebSocket?: typeof WebSocket }).WebSocket;
  if (WS === undefined) throw new Error("no global WebSocket: run node with --experimental-websocket (Node 20) or Node ≥ 22");
  return WS;
}

export interface WaitOptions {
  timeoutMs?: number;
  intervalMs?: number;
}

/** Polls `condition` until it returns a truthy value (returned) or the deadline passes (throws with `describe()`). */
export async function waitFor<T>(what: string, condition: () => T | Promise<T>, options: WaitOptions & { describe?: () => string } = {}): Promise<NonNullable<T>> {
  const deadline = Date.now() + (options.timeoutMs ?? 20_000);
  const interval = options.intervalMs ?? 25;
  let lastError: unknown;
  for (;;) {
    try {
      const value = await condition();
      if (value) return value as NonNullable<T>;
      lastError = undefined;
    } catch (error) {
      lastError = error;
    }
    if (Date.now() > deadline) {
      const detail = options.describe?.() ?? (lastError === undefined ? "" : String(lastError));
      throw new Error(`timed out after ${options.timeoutMs ?? 20_000} ms waiting for ${what}${detail === "" ? "" : `: ${detail}`}`);
    }
    await new Promise((r) => setTimeout(r, interval));
  }
}

export interface Banner {
  page: string;
  ws: string;
  port: number;
}

const live = new Set<ChildProcess>();
process.on("exit", () => {
  for (const child of live) child.kill("SIGKILL");
});

/** One statecast-local process after another on the same port and data file. */
export class LocalStack {
  readonly dir: string;
  readonly data: string;
  private child: ChildProcess | undefined;
  private exited: Promise<void> = Promise.resolve();
  private logTail: string[] = [];
  banner: Banner | undefined;
  /** How many processes were started. */
  starts = 0;

  constructor() {
    this.dir = mkdtempSync(join(tmpdir(), "statecast-it-"));
    this.data = join(this.dir, "data.sqlite");
  }

  get port(): number {
    if (this.banner === undefined) throw new Error("the stack was never started");
    return this.banner.port;
  }

  get running(): boolean {
    return this.child !== undefined;
  }

  /** The last lines the process printed (for failure messages). */
  log(): string {
    return this.logTail.join("\n");
  }

  /** Starts the stack (the first time on port 0, later on the same port) and waits for its banner. */
  async start(): Promise<Banner> {
    if (this.child !== undefined) throw new Error("already running");
    const bin = localBinary();
    const port = this.banner?.port ?? 0;
    // The port of a killed process can be briefly unavailable: retry the bind for a while.
    const deadline = Date.now() + 15_000;
    for (;;) {
      try {
        return await this.spawnOnce(bin, port);
      } catch (error) {
        if (port === 0 || Date.now() > deadline || !/in use|AddrInUse|os error 98/i.test(this.log())) throw error;
        await new Promise((r) => setTimeout(r, 100));
      }
    }
  }

  private spawnOnce(bin: string, port: number): Promise<Banner> {
    this.logTail = [];
    const child = spawn(bin, ["--port", String(port), "--data", this.data], {
      cwd: this.dir,
      env: { ...process.env, RUST_LOG: process.env.RUST_LOG ?? "warn", NO_COLOR: "1" },
      stdio: ["ignore", "pipe", "pipe"],
    });
    this.starts += 1;
    live.add(child);
    this.exited = new Promise((r) => child.once("exit", () => r()));
    return new Promise<Banner>((resolveBanner, reject) => {
      let page: string | undefined;
      let ws: string | undefined;
      let settled = false;
      const timer = setTimeout(() => fail(new Error("no banner from statecast-local within 30 s")), 30_000);
      const fail = (error: Error) => {
        if (settled) return;
        settled = true;
        clearTimeout(timer);
        child.kill("SIGKILL");
        live.delete(child);
        if (this.child === child) this.child = undefined;
        reject(new Error(`${error.message}\n--- statecast-local output ---\n${this.log()}`));
      };
      const onLine = (line: string) => {
        this.logTail.push(line);
        if (this.logTail.length > 200) this.logTail.shift();
        const m = /^\s*(Page|WebSocket):\s+(\S+)/.exec(line);
        if (m?.[1] === "Page") page = m[2];
        if (m?.[1] === "WebSocket") ws = m[2];
        if (!settled && page !== undefined && ws !== undefined) {
          settled = true;
          clearTimeout(timer);
          this.child = child;
          this.banner = { page, ws, port: Number(new URL(ws).port) };
          resolveBanner(this.banner);
        }
      };
      for (const stream of [child.stdout, child.stderr]) {
        let buffered = "";
        stream?.setEncoding("utf8");
        stream?.on("data", (chunk: string) => {
          buffered += chunk;
          let nl;
          while ((nl = buffered.indexOf("\n")) >= 0) {
            onLine(buffered.slice(0, nl));
            buffered = buffered.slice(nl + 1);
          }
        });
      }
      child.once("error", (error) => fail(error));
      child.once("exit", (code, signal) => {
        live.delete(child);
        if (this.child === child) this.child = undefined;
        fail(new Error(`statecast-local exited (${signal ?? code}) before its banner`));
      });
    });
  }

  /** SIGKILL: no Ctrl-C handling, no flush; waits until the process is gone. */
  async kill(): Promise<void> {
    const child = this.child;
    if (child === undefined) return;
    this.child = undefined;
    child.kill("SIGKILL");
    await this.exited;
    live.delete(child);
  }

  /** Ctrl-C (SIGINT), then SIGKILL after 10 s; removes the data directory. */
  async stop(): Promise<void> {
    const child = this.child;
    if (child !== undefined) {
      this.child = undefined;
      child.kill("SIGINT");
      const timer = setTimeout(() => child.kill("SIGKILL"), 10_000);
      await this.exited;
      clearTimeout(timer);
      live.delete(child);
    }
    rmSync(this.dir, { recursive: true, force: true });
  }
}

export interface StoredState {
  epoch: number;
  version: number;
  state: unknown;
}

/**
 * The stored state of `actor`, read by a fresh subscription on its own socket (the
 * `subscribed` reply; large replies in `part` frames are reassembled).
 */
export function readStored(wsUrl: string, actor: string, timeoutMs = 10_000): Promise<StoredState> {
  const WS = nodeWebSocket();
  return new Promise((resolveState, reject) => {
    const socket = new WS(wsUrl);
    const parts: string[] = [];
    const timer = setTimeout(() => done(new Error(`no subscribed reply for ${actor} within ${timeoutMs} ms`)), timeoutMs);
    const done = (error: Error | undefined, value?: StoredState) => {
      clearTimeout(timer);
      socket.onmessage = socket.onerror = socket.onclose = null;
      try {
        socket.close();
      } catch {
        // closing anyway
      }
      if (error !== undefined) reject(error);
      else resolveState(value as StoredState);
    };
    socket.onopen = () => socket.send(JSON.stringify({ action: "subscribe", id: 1, actor }));
    socket.onerror = () => done(new Error(`cannot read ${actor} from ${wsUrl}`));
    socket.onclose = () => done(new Error(`socket closed before the subscribed reply for ${actor}`));
    socket.onmessage = (event) => {
      let frame = JSON.parse(String(event.data)) as Record<string, unknown>;
      if (frame.type === "part") {
        parts[Number(frame.index)] = String(frame.data);
        if (parts.filter((p) => p !== undefined).length < Number(frame.count)) return;
        frame = JSON.parse(parts.join("")) as Record<string, unknown>;
      }
      if (frame.type === "subscribed" && frame.id === 1) {
        done(undefined, { epoch: Number(frame.epoch), version: Number(frame.version), state: frame.state });
      } else if (frame.type === "error" && frame.id === 1) {
        done(new Error(`subscribe ${actor}: ${String(frame.code)}: ${String(frame.message)}`));
      }
    };
  });
}

/** A unique actor key of type `type`. */
export function uniqueActor(type: string): string {
  return `${type}/it-${Date.now().toString(36)}-${Math.random().toString(36).slice(2, 8)}`;
}
