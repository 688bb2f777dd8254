/**
 * Token authentication: tokens are random strings handed to users once; the server stores only
 * their hash (`sha256:` for high-entropy generated tokens, or `scrypt:` for tokens people chose).
 * scrypt runs off the event loop; failed tokens are remembered and failures are rate-limited per
 * client address (see {@linkcode Authenticator}).
 *
 * @module
 */
import { Buffer } from "node:buffer";
import { createHash, randomBytes, scrypt, scryptSync, timingSafeEqual } from "node:crypto";
import type { UserConfig } from "./config.ts";

/** Hash algorithm for stored tokens. */
export type TokenHashAlgorithm = "sha256" | "scrypt";

/** Creates a new random token (32 bytes, base64url): give it to the user, store its hash. */
export function generateToken(): string {
  return `pt_${randomBytes(32).toString("base64url")}`;
}

/** Hashes a token for the configuration file (`sha256:<hex>` or `scrypt:<N>:<salt>:<hash>`). */
export function hashToken(token: string, options: { algorithm?: TokenHashAlgorithm } = {}): string {
  if (options.algorithm === "scrypt") {
    const n = 16384;
    const salt = randomBytes(16);
    const h = scryptSync(token, salt, 32, { N: n, r: 8, p: 1 });
    return `scrypt:${n}:${salt.toString("base64")}:${h.toString("base64")}`;
  }
  return `sha256:${sha256Hex(token)}`;
}

/** Parsed `scrypt:<N>:<salt>:<hash>`, or null when `stored` is not a usable scrypt hash. */
function scryptParts(stored: string): { n: number; salt: Buffer; want: Buffer } | null {
  const parts = stored.split(":");
  if (parts[0] !== "scrypt" || parts.length !== 4) return null;
  const n = Number(parts[1]);
  const salt = Buffer.from(parts[2], "base64");
  const want = Buffer.from(parts[3], "base64");
  if (!Number.isInteger(n) || n < 2 || want.length === 0) return null;
  return { n, salt, want };
}

/**
 * Whether `token` matches a stored hash (constant-time comparison). Synchronous: a scrypt hash
 * blocks the thread for tens of milliseconds; servers use {@linkcode verifyTokenAsync}.
 */
export function verifyToken(token: string, stored: string): boolean {
  const parts = stored.split(":");
  if (parts[0] === "sha256" && parts.length === 2) {
    return safeEqual(Buffer.from(sha256Hex(token), "hex"), Buffer.from(parts[1], "hex"));
  }
  const s = scryptParts(stored);
  if (!s) return false;
  const got = scryptSync(token, s.salt, s.want.length, {
    N: s.n,
    r: 8,
    p: 1,
    maxmem: 256 * s.n * 8,
  });
  return safeEqual(got, s.want);
}

/**
 * {@linkcode verifyToken} with scrypt run off the event loop (node:crypto's asynchronous
 * `scrypt`), so that checking one token cannot stall every other request.
 *
 * @example
 * ```ts
 * import { hashToken, verifyTokenAsync } from "./auth.ts";
 * const token = "a-long-random-token";
 * const ok = await verifyTokenAsync(token, hashToken(token, { algorithm: "scrypt" })); // true
 * ```
 */
export async function verifyTokenAsync(token: string, stored: string): Promise<boolean> {
  const s = scryptParts(stored);
  if (!s) return verifyToken(token, stored);
  const got = await new Promise<Buffer>((resolve, reject) =>
    scrypt(
      token,
      s.salt,
      s.want.length,
      { N: s.n, r: 8, p: 1, maxmem: 256 * s.n * 8 },
      (e, key) => (e ? reject(e) : resolve(key)),
    )
  );
  return safeEqual(got, s.want);
}

/** Tuning of {@linkcode Authenticator} (defaults in {@linkcode AUTH_DEFAULTS}). */
export interface AuthOptions {
  /** How many failed tokens to remember (least recently seen forgotten first). */
  failedCacheSize?: number;
  /** How long a failed token is remembered, in ms. */
  failedTtlMs?: number;
  /** Failed token checks one client address may make per window before it gets 429. */
  maxFailures?: number;
  /** The rate-limit window, in ms (counted from the address's first failure in it). */
  failureWindowMs?: number;
  /** Client addresses tracked at once (oldest forgotten first). */
  maxClients?: number;
  /** scrypt checks running at once (each takes 16 MiB and a CPU for tens of ms). */
  maxConcurrentScrypt?: number;
  /** Checks a token against a stored hash (default {@linkcode verifyTokenAsync}; tests count calls). */
  verify?: (token: string, stored: string) => Promise<boolean>;
  /** Clock in ms (default `Date.now`). */
  now?: () => number;
}

/** Defaults of {@linkcode AuthOptions}. */
export const AUTH_DEFAULTS = {
  failedCacheSize: 10_000,
  failedTtlMs: 10 * 60_000,
  maxFailures: 20,
  failureWindowMs: 60_000,
  maxClients: 10_000,
  maxConcurrentScrypt: 2,
} as const;

/** What {@linkcode Authenticator.check} decided about a request. */
export type AuthOutcome =
  | { ok: true; user: UserConfig }
  | { ok: false; status: 401; reason: "missing" | "invalid" }
  | { ok: false; status: 429; retryAfterS: number };

/** A Map used as an LRU: re-inserting moves a key to the end, the first key is the oldest. */
function touch<K, V>(m: Map<K, V>, k: K, v: V, max: number): void {
  m.delete(k);
  m.set(k, v);
  while (m.size > max) m.delete(m.keys().next().value as K);
}

/**
 * Finds the user owning a token. sha256 tokens are a map lookup; scrypt tokens are checked off
 * the event loop, at most `maxConcurrentScrypt` at a time, and remembered by the token's sha256:
 * good ones until restart, failed ones (an LRU with a TTL) for `failedTtlMs`, so an unknown token
 * sent again costs no scrypt. Each client address may fail `maxFailures` times per
 * `failureWindowMs`; then requests from it that would need a scrypt check get 429 with
 * `Retry-After` until the window ends.
 *
 * @example
 * ```ts
 * import { Authenticator } from "./auth.ts";
 * import { loadServerConfig } from "./config.ts";
 * const config = await loadServerConfig("petrel-server.json");
 * const auth = new Authenticator(config.users);
 * const req = new Request("http://localhost:8787/api/jobs", {
 *   headers: { authorization: "Bearer a-long-random-token" },
 * });
 * const r = await auth.check(req, "203.0.113.7"); // the client's address
 * if (r.ok) console.log(r.user.name);
 * ```
 */
export class Authenticator {
  #bySha = new Map<string, UserConfig>();
  #scryptUsers: UserConfig[] = [];
  #cache = new Map<string, UserConfig>();
  #failed = new Map<string, number>(); // token sha256 → expiry (ms)
  #inFlight = new Map<string, Promise<UserConfig | undefined>>();
  #clients = new Map<string, { start: number; failures: number }>();
  #running = 0;
  #waiting: (() => void)[] = [];
  #o: Required<AuthOptions>;

  /** Indexes the users' token hashes. */
  constructor(users: readonly UserConfig[], options: AuthOptions = {}) {
    this.#o = { ...AUTH_DEFAULTS, verify: verifyTokenAsync, now: Date.now, ...options };
    for (const u of users) {
      if (u.tokenHash.startsWith("sha256:")) this.#bySha.set(u.tokenHash.slice(7), u);
      else this.#scryptUsers.push(u);
    }
  }

  /** The user a token belongs to without any scrypt check (sha256 and remembered tokens). */
  #cheap(sha: string): UserConfig | undefined | null {
    const known = this.#bySha.get(sha) ?? this.#cache.get(sha);
    if (known) return known;
    if (this.#scryptUsers.length === 0) return undefined;
    const expiry = this.#failed.get(sha);
    if (expiry !== undefined) {
      if (expiry > this.#o.now()) return undefined;
      this.#failed.delete(sha);
    }
    return null; // needs scrypt
  }

  async #slot<T>(f: () => Promise<T>): Promise<T> {
    if (this.#running >= this.#o.maxConcurrentScrypt) {
      await new Promise<void>((resolve) => this.#waiting.push(resolve));
    } else this.#running++;
    try {
      return await f();
    } finally {
      const next = this.#waiting.shift();
      if (next) next(); // the slot passes on
      else this.#running--;
    }
  }

  #scrypt(token: string, sha: string): Promise<UserConfig | undefined> {
    const pending = this.#inFlight.get(sha);
    if (pending) return pending; // the same token sent many times at once: one check
    const p = this.#slot(async () => {
      for (const u of this.#scryptUsers) {
        if (await this.#o.verify(token, u.tokenHash)) {
          touch(this.#cache, sha, u, 1000);
          return u;
        }
      }
      touch(this.#failed, sha, this.#o.now() + this.#o.failedTtlMs, this.#o.failedCacheSize);
      return undefined;
    }).finally(() => this.#inFlight.delete(sha));
    this.#inFlight.set(sha, p);
    return p;
  }

  /** The user whose token this is, or undefined (no rate limit: see {@linkcode check}). */
  async authenticate(token: string): Promise<UserConfig | undefined> {
    if (token.length < 8 || token.length > 512) return undefined;
    const sha = sha256Hex(token);
    const cheap = this.#cheap(sha);
    return cheap === null ? await this.#scrypt(token, sha) : cheap;
  }

  /** Seconds until `client` may try again, or 0 when it is not limited. */
  #blockedFor(client: string): number {
    const c = this.#clients.get(client);
    if (!c) return 0;
    const left = c.start + this.#o.failureWindowMs - this.#o.now();
    if (left <= 0) {
      this.#clients.delete(client);
      return 0;
    }
    return c.failures >= this.#o.maxFailures ? Math.ceil(left / 1000) : 0;
  }

  #fail(client: string): void {
    const c = this.#clients.get(client);
    const now = this.#o.now();
    if (c && now < c.start + this.#o.failureWindowMs) {
      c.failures++;
      touch(this.#clients, client, c, this.#o.maxClients);
    } else touch(this.#clients, client, { start: now, failures: 1 }, this.#o.maxClients);
  }

  /**
   * Authenticates a request's `Authorization: Bearer <token>` for the client at `client` (its
   * address): the user, 401 (no or a wrong token) or 429 (too many failures from this address).
   */
  async check(req: Request, client: string): Promise<AuthOutcome> {
    const h = req.headers.get("authorization") ?? "";
    if (!h) return { ok: false, status: 401, reason: "missing" };
    const m = /^Bearer\s+(\S+)$/i.exec(h.trim());
    const token = m?.[1] ?? "";
    const sha = sha256Hex(token);
    const ok = token.length >= 8 && token.length <= 512;
    const cheap = ok ? this.#cheap(sha) : undefined;
    if (cheap) return { ok: true, user: cheap };
    const wait = this.#blockedFor(client);
    if (wait > 0) return { ok: false, status: 429, retryAfterS: wait };
    // Counted before the check, so that guesses sent at once cannot all slip past the limit.
    this.#fail(client);
    const user = cheap === null ? await this.#scrypt(token, sha) : undefined;
    if (!user) return { ok: false, status: 401, reason: "invalid" };
    const c = this.#clients.get(client);
    if (c && c.failures > 0) c.failures--; // it was not a failure after all
    return { ok: true, user };
  }

  /** The user of a request's `Authorization: Bearer <token>` header, or undefined. */
  async fromRequest(req: Request): Promise<UserConfig | undefined> {
    const h = req.headers.get("authorization") ?? "";
    const m = /^Bearer\s+(\S+)$/i.exec(h.trim());
    return m ? await this.authenticate(m[1]) : undefined;
  }
}

function sha256Hex(s: string): string {
  return createHash("sha256").update(s, "utf8").digest("hex");
}

function safeEqual(a: Uint8Array, b: Uint8Array): boolean {
  return a.length === b.length && timingSafeEqual(a, b);
}
