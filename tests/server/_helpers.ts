/**
 * Shared set-up of the server tests: a temporary data folder, two users (alice, bob; bob's token
 * hashed with scrypt), the test recipes in the allow-list, and a `call` helper that talks to the
 * handler directly (no socket).
 *
 * @module
 */
import {
  createServer,
  hashToken,
  type PetrelServer,
  type ServerConfigInput,
} from "../../core/server/mod.ts";

export const FIXTURES = new URL("./fixtures/", import.meta.url).pathname;
export const TOKENS = { alice: "pt_alice_token_0123456789", bob: "pt_bob_token_9876543210" };
export const TERMINAL = new Set(["succeeded", "failed", "cancelled"]);

/** A test environment: a server over a temporary data folder. */
export interface TestEnv {
  dir: string;
  server: PetrelServer;
  config: ServerConfigInput;
  call(
    token: string | undefined,
    method: string,
    path: string,
    body?: unknown,
    headers?: Record<string, string>,
  ): Promise<Response>;
  json(token: string | undefined, method: string, path: string, body?: unknown): Promise<
    { status: number; body: Record<string, unknown> }
  >;
  waitDone(token: string, id: string, timeoutMs?: number): Promise<Record<string, unknown>>;
  close(): Promise<void>;
}

/** The configuration used by the tests (data in `dir`). */
export function testConfig(
  dir: string,
  overrides: Partial<ServerConfigInput> = {},
): ServerConfigInput {
  return {
    dataDir: `${dir}/data`,
    jobsPerGpu: 2,
    recipes: { sum: `${FIXTURES}sum_recipe.ts`, hostile: `${FIXTURES}hostile_recipe.ts` },
    datasets: { phantom: `${dir}/datasets/phantom` },
    limits: {
      timeoutMs: 60_000,
      memoryMb: 256,
      maxOutputBytes: 64 << 20,
      maxUploadBytes: 1 << 20,
      maxActiveJobs: 40,
    },
    maxLogLines: 200,
    users: [
      { name: "alice", tokenHash: hashToken(TOKENS.alice) },
      { name: "bob", tokenHash: hashToken(TOKENS.bob, { algorithm: "scrypt" }) },
    ],
    ...overrides,
  };
}

/** Creates a test environment. */
export async function setup(overrides: Partial<ServerConfigInput> = {}): Promise<TestEnv> {
  const dir = await Deno.makeTempDir({ prefix: "petrel_server_test_" });
  await Deno.mkdir(`${dir}/datasets/phantom`, { recursive: true });
  await Deno.writeFile(`${dir}/datasets/phantom/counts.bin`, new Uint8Array([1, 2, 3, 250]));
  const config = testConfig(dir, overrides);
  const server = await createServer({ config: config as never, verbose: false });
  const call = (
    token: string | undefined,
    method: string,
    path: string,
    body?: unknown,
    headers: Record<string, string> = {},
  ): Promise<Response> => {
    const h: Record<string, string> = { ...headers };
    if (token !== undefined) h.authorization = `Bearer ${token}`;
    let b: BodyInit | undefined;
    if (body instanceof FormData || typeof body === "string" || body instanceof Uint8Array) {
      b = body as BodyInit;
    } else if (body !== undefined) {
      b = JSON.stringify(body);
      h["content-type"] ??= "application/json";
    }
    return server.handler(
      new Request(`http://petrel.test${path}`, { method, headers: h, body: b }),
    );
  };
  const json = async (token: string | undefined, method: string, path: string, body?: unknown) => {
    const res = await call(token, method, path, body);
    return { status: res.status, body: await res.json() };
  };
  const waitDone = async (token: string, id: string, timeoutMs = 30_000) => {
    const t0 = Date.now();
    let after = 0;
    while (Date.now() - t0 < timeoutMs) {
      const r = await json(token, "GET", `/api/jobs/${id}/log?after=${after}&wait=2000`);
      if (r.status !== 200) {
        throw new Error(`log poll answered ${r.status}: ${JSON.stringify(r.body)}`);
      }
      after = r.body.next as number;
      if (TERMINAL.has(r.body.state as string)) return r.body.job as Record<string, unknown>;
    }
    throw new Error(`job ${id} did not finish within ${timeoutMs} ms`);
  };
  return {
    dir,
    server,
    config,
    call,
    json,
    waitDone,
    async close() {
      await server.close();
      await Deno.remove(dir, { recursive: true });
    },
  };
}

/** Base64 of bytes. */
export function b64(bytes: Uint8Array): string {
  let s = "";
  for (const b of bytes) s += String.fromCharCode(b);
  return btoa(s);
}

/** All log lines of a job. */
export async function fullLog(env: TestEnv, token: string, id: string): Promise<string> {
  const r = await env.json(token, "GET", `/api/jobs/${id}/log?after=0`);
  return (r.body.lines as { line: string }[]).map((l) => l.line).join("\n");
}

/** True when headless-Chromium tests can run: Debian's `/usr/bin/chromium`, net on 127.0.0.1, run. */
export function chromiumAvailable(): boolean {
  try {
    if (Deno.permissions.querySync({ name: "net", host: "127.0.0.1" }).state !== "granted") {
      return false;
    }
    if (Deno.permissions.querySync({ name: "run" }).state !== "granted") return false;
    return Deno.statSync("/usr/bin/chromium").isFile;
  } catch {
    return false;
  }
}

/**
 * Runs a headless-browser driver (`deno run -A <driver> <args…>`) and returns the JSON of its
 * `RESULT {…}` line; fails with everything it printed when there is none.
 */
export async function runDriver(driver: string, args: readonly string[]): Promise<
  // deno-lint-ignore no-explicit-any
  Record<string, any>
> {
  const out = await new Deno.Command(Deno.execPath(), {
    args: ["run", "-A", driver, ...args],
    stdout: "piped",
    stderr: "piped",
  }).output();
  const stdout = new TextDecoder().decode(out.stdout);
  const line = stdout.split("\n").find((l) => l.startsWith("RESULT "));
  if (!line) {
    throw new Error(
      `driver printed no result:\n${stdout}\n${new TextDecoder().decode(out.stderr)}`,
    );
  }
  return JSON.parse(line.slice(7));
}

/** A `petrel serve` subprocess: its base URL, everything it printed, and its drained pipes. */
export interface ServeProcess {
  child: Deno.ChildProcess;
  url: string;
  output: string[];
  /** Settles when both pipes are closed (after the process exits). */
  drained: Promise<unknown>;
}

/**
 * Starts `deno run <permissions> petrel.ts serve --config <config> --port 0` and waits up to
 * `timeoutMs` for its "listening on" line; without one it kills the process and throws with what
 * it printed.
 */
export async function spawnServe(
  permissions: readonly string[],
  config: string,
  timeoutMs: number,
): Promise<ServeProcess> {
  const child = new Deno.Command(Deno.execPath(), {
    args: [
      "run",
      ...permissions,
      new URL("../../petrel.ts", import.meta.url).pathname,
      "serve",
      "--config",
      config,
      "--port",
      "0",
    ],
    stdout: "piped",
    stderr: "piped",
    stdin: "null",
  }).spawn();
  const output: string[] = [];
  let resolveUrl!: (u: string) => void;
  const url = new Promise<string>((r) => resolveUrl = r);
  const drain = async (s: ReadableStream<Uint8Array>) => {
    for await (const chunk of s.pipeThrough(new TextDecoderStream())) {
      output.push(chunk);
      const m = /listening on (http:\/\/127\.0\.0\.1:\d+)/.exec(output.join(""));
      if (m) resolveUrl(m[1]);
    }
  };
  const drained = Promise.all([drain(child.stdout), drain(child.stderr)]);
  let timer: ReturnType<typeof setTimeout> | undefined;
  const timeout = new Promise<never>((_, rej) => {
    timer = setTimeout(() => rej(new Error(`no listening line: ${output.join("")}`)), timeoutMs);
  });
  try {
    return { child, url: await Promise.race([url, timeout]), output, drained };
  } catch (e) {
    child.kill("SIGKILL");
    throw e;
  } finally {
    clearTimeout(timer);
  }
}
