// Issue 14, server: unknown tokens must not cost a synchronous scrypt each (failed-token cache,
// scrypt off the event loop, a cap on concurrent checks), failures are rate-limited per client
// address (429 + Retry-After), and the database and job folders are the server user's only.
// The mechanisms are tested (calls counted, clocks injected), not timings.
import { assert, assertEquals, assertMatch } from "../runtime/_assert.ts";
import {
  Authenticator,
  hashToken,
  type UserConfig,
  verifyToken,
  verifyTokenAsync,
} from "../../core/server/mod.ts";
import { setup, TOKENS } from "./_helpers.ts";

const GOOD = "pt_chosen_by_a_person_42";
const users: UserConfig[] = [
  { name: "alice", tokenHash: hashToken(TOKENS.alice), quota: {} },
  { name: "carol", tokenHash: hashToken(GOOD, { algorithm: "scrypt" }), quota: {} },
];

/** An Authenticator whose scrypt checks are counted and whose clock is set by the test. */
function counted(options: Record<string, number> = {}) {
  const clock = { t: 1_000_000 };
  const calls: string[] = [];
  const auth = new Authenticator(users, {
    verify: (token, stored) => {
      calls.push(token);
      return verifyTokenAsync(token, stored);
    },
    now: () => clock.t,
    ...options,
  });
  return { auth, calls, clock };
}

const bearer = (token: string) =>
  new Request("http://petrel.test/api/me", { headers: { authorization: `Bearer ${token}` } });

Deno.test("verifyTokenAsync agrees with verifyToken and leaves the event loop free", async () => {
  const s = hashToken(GOOD, { algorithm: "scrypt" });
  const h = hashToken(GOOD);
  for (const [token, stored] of [[GOOD, s], [GOOD + "x", s], [GOOD, h], [GOOD + "x", h]]) {
    assertEquals(await verifyTokenAsync(token, stored), verifyToken(token, stored), token);
  }
  assertEquals(await verifyTokenAsync(GOOD, "scrypt:1:xx:yy"), false);
  // A timer due now runs while scrypt is computed: it is not computed on this thread.
  let fired = false;
  setTimeout(() => (fired = true), 0);
  assertEquals(await verifyTokenAsync(GOOD, s), true);
  assert(fired, "scrypt blocked the event loop");
});

Deno.test("auth: an unknown token costs one scrypt, then is answered from the failed cache", async () => {
  const { auth, calls, clock } = counted({ failedTtlMs: 60_000 });
  const bad = "pt_guess_000000000";
  assertEquals(await auth.authenticate(bad), undefined);
  assertEquals(calls.length, 1); // one scrypt user
  for (let i = 0; i < 5; i++) assertEquals(await auth.authenticate(bad), undefined);
  assertEquals(calls.length, 1, "a cached failure ran scrypt again");
  // the same unknown token sent many times at once: one check
  const other = "pt_guess_111111111";
  const all = await Promise.all(Array.from({ length: 8 }, () => auth.authenticate(other)));
  assert(all.every((u) => u === undefined));
  assertEquals(calls.length, 2);
  // after the TTL the token is checked again
  clock.t += 60_001;
  await auth.authenticate(bad);
  assertEquals(calls.length, 3);
  // sha256 tokens and remembered good scrypt tokens never run scrypt twice
  assertEquals((await auth.authenticate(TOKENS.alice))?.name, "alice");
  assertEquals(calls.length, 3);
  assertEquals((await auth.authenticate(GOOD))?.name, "carol");
  assertEquals((await auth.authenticate(GOOD))?.name, "carol");
  assertEquals(calls.length, 4);
});

Deno.test("auth: the failed cache is a bounded LRU", async () => {
  const { auth, calls } = counted({ failedCacheSize: 2 });
  for (const t of ["pt_guess_a_000000", "pt_guess_b_000000", "pt_guess_c_000000"]) {
    await auth.authenticate(t);
  }
  assertEquals(calls.length, 3);
  await auth.authenticate("pt_guess_c_000000"); // still cached
  assertEquals(calls.length, 3);
  await auth.authenticate("pt_guess_a_000000"); // evicted as the oldest
  assertEquals(calls.length, 4);
});

Deno.test("auth: at most maxConcurrentScrypt checks run at once", async () => {
  let running = 0;
  let peak = 0;
  const auth = new Authenticator(users, {
    maxConcurrentScrypt: 2,
    verify: async () => {
      running++;
      peak = Math.max(peak, running);
      await new Promise((r) => setTimeout(r, 5));
      running--;
      return false;
    },
  });
  const tokens = Array.from({ length: 7 }, (_, i) => `pt_distinct_guess_${i}`);
  await Promise.all(tokens.map((t) => auth.authenticate(t)));
  assertEquals(peak, 2);
  assertEquals(running, 0);
});

Deno.test("auth: failures are rate-limited per client address (429 with Retry-After)", async () => {
  const { auth, calls, clock } = counted({ maxFailures: 3, failureWindowMs: 60_000 });
  const guesses = Array.from({ length: 5 }, (_, i) => `pt_brute_force_${i}`);
  for (let i = 0; i < 3; i++) {
    const r = await auth.check(bearer(guesses[i]), "198.51.100.7");
    assertEquals(r, { ok: false, status: 401, reason: "invalid" });
  }
  assertEquals(calls.length, 3);
  let r = await auth.check(bearer(guesses[3]), "198.51.100.7");
  assertEquals(r, { ok: false, status: 429, retryAfterS: 60 });
  assertEquals(calls.length, 3, "a limited address still ran scrypt");
  clock.t += 30_000;
  r = await auth.check(bearer(guesses[3]), "198.51.100.7");
  assertEquals(r, { ok: false, status: 429, retryAfterS: 30 });
  // other addresses are not limited; known tokens pass without scrypt even from this one
  assertEquals((await auth.check(bearer(guesses[3]), "203.0.113.9")).ok, false);
  assertEquals(calls.length, 4);
  const alice = await auth.check(bearer(TOKENS.alice), "198.51.100.7");
  assertEquals(alice.ok && alice.user.name, "alice");
  // a missing header is not a failure; the window ends and the address may try again
  assertEquals(
    await auth.check(new Request("http://petrel.test/api/me"), "192.0.2.1"),
    { ok: false, status: 401, reason: "missing" },
  );
  clock.t += 30_001;
  r = await auth.check(bearer(GOOD), "198.51.100.7");
  assertEquals(r.ok && r.user.name, "carol");
});

Deno.test("auth: guesses sent at once from one address cannot pass the limit together", async () => {
  const { auth, calls } = counted({ maxFailures: 3 });
  const guesses = Array.from({ length: 10 }, (_, i) => `pt_parallel_guess_${i}`);
  const rs = await Promise.all(guesses.map((g) => auth.check(bearer(g), "198.51.100.8")));
  assertEquals(rs.filter((r) => !r.ok && r.status === 401).length, 3);
  assertEquals(rs.filter((r) => !r.ok && r.status === 429).length, 7);
  assertEquals(calls.length, 3);
  // a good scrypt token is not counted as a failure
  const { auth: a2 } = counted({ maxFailures: 1 });
  for (let i = 0; i < 3; i++) assertEquals((await a2.check(bearer(GOOD), "192.0.2.5")).ok, true);
  assertEquals((await a2.check(bearer("pt_one_guess_0000"), "192.0.2.5")).ok, false);
  const r = await a2.check(bearer("pt_two_guess_0000"), "192.0.2.5");
  assertEquals(!r.ok && r.status, 429);
});

Deno.test("server: 429 with Retry-After after repeated bad tokens; health unaffected", async () => {
  const env = await setup();
  try {
    const info = (hostname: string) =>
      ({
        remoteAddr: { transport: "tcp", hostname, port: 40000 },
        completed: Promise.resolve(),
      }) as unknown as Deno.ServeHandlerInfo;
    const call = (token: string, path: string, host = "198.51.100.7") =>
      env.server.handler(
        new Request(`http://petrel.test${path}`, {
          headers: { authorization: `Bearer ${token}` },
        }),
        info(host),
      );
    let last: Response | undefined;
    for (let i = 0; i < 21; i++) {
      last = await call("pt_not_a_real_token_000", "/api/me");
      if (last.status === 429) break;
      assertEquals(last.status, 401);
      await last.body?.cancel();
    }
    assertEquals(last!.status, 429);
    const retry = Number(last!.headers.get("retry-after"));
    assert(Number.isInteger(retry) && retry > 0 && retry <= 60, `Retry-After ${retry}`);
    assertMatch(String((await last!.json()).error), /too many failed logins/);
    assertEquals((await call("pt_not_a_real_token_000", "/api/health")).status, 200);
    const elsewhere = await call("pt_not_a_real_token_000", "/api/me", "203.0.113.9");
    assertEquals(elsewhere.status, 401);
    await elsewhere.body?.cancel();
    const me = await call(TOKENS.alice, "/api/me");
    assertEquals(me.status, 200);
    await me.body?.cancel();
  } finally {
    await env.close();
  }
});

Deno.test("server: data folder, jobs and petrel.db (+ -wal, -shm) are the server user's only", async () => {
  const env = await setup();
  try {
    const data = `${env.dir}/data`;
    const sub = await env.json(TOKENS.alice, "POST", "/api/jobs", {
      recipe: "sum",
      params: { steps: 1 },
      inputs: [{ name: "a.bin", dataBase64: "AQID" }],
    });
    assertEquals(sub.status, 201, JSON.stringify(sub.body));
    await env.waitDone(TOKENS.alice, sub.body.id as string);
    const mode = async (p: string) => ((await Deno.stat(p)).mode ?? 0) & 0o777;
    const job = `${data}/jobs/alice/${sub.body.id}`;
    for (const d of [data, `${data}/jobs`, job, `${job}/in`]) {
      assertEquals((await mode(d)).toString(8), "700", d);
    }
    for await (const e of Deno.readDir(job)) {
      if (e.isDirectory) assertEquals((await mode(`${job}/${e.name}`)).toString(8), "700", e.name);
    }
    const dbFiles = ["petrel.db", "petrel.db-wal", "petrel.db-shm"];
    for (const f of dbFiles) assertEquals((await mode(`${data}/${f}`)).toString(8), "600", f);
  } finally {
    await env.close();
  }
});

Deno.test("server: a world-readable petrel.db and data folder from before are made private", async () => {
  const dir = await Deno.makeTempDir({ prefix: "petrel_modes_" });
  try {
    await Deno.mkdir(`${dir}/data`, { mode: 0o755 });
    await Deno.chmod(`${dir}/data`, 0o755);
    await Deno.writeFile(`${dir}/data/petrel.db`, new Uint8Array());
    await Deno.chmod(`${dir}/data/petrel.db`, 0o644);
    const env = await setup({ dataDir: `${dir}/data` });
    try {
      const mode = async (p: string) => ((await Deno.stat(p)).mode ?? 0) & 0o777;
      assertEquals((await mode(`${dir}/data`)).toString(8), "700");
      assertEquals((await mode(`${dir}/data/petrel.db`)).toString(8), "600");
    } finally {
      await env.close();
    }
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});
