/**
 * Token authentication: tokens are random strings handed to users once; the server stores only
 * their hash (`sha256:` for high-entropy generated tokens, or `scrypt:` for tokens people chose).
 *
 * @module
 */
import { Buffer } from "node:buffer";
import { createHash, randomBytes, scryptSync, timingSafeEqual } from "node:crypto";
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

/** Whether `token` matches a stored hash (constant-time comparison). */
export function verifyToken(token: string, stored: string): boolean {
  const parts = stored.split(":");
  if (parts[0] === "sha256" && parts.length === 2) {
    return safeEqual(Buffer.from(sha256Hex(token), "hex"), Buffer.from(parts[1], "hex"));
  }
  if (parts[0] === "scrypt" && parts.length === 4) {
    const n = Number(parts[1]);
    const salt = Buffer.from(parts[2], "base64");
    const want = Buffer.from(parts[3], "base64");
    if (!Number.isInteger(n) || n < 2 || want.length === 0) return false;
    const got = scryptSync(token, salt, want.length, { N: n, r: 8, p: 1, maxmem: 256 * n * 8 });
    return safeEqual(got, want);
  }
  return false;
}

/** Finds the user owning a token; caches successful scrypt checks by the token's sha256. */
export class Authenticator {
  #bySha = new Map<string, UserConfig>();
  #scryptUsers: UserConfig[] = [];
  #cache = new Map<string, UserConfig>();

  /** Indexes the users' token hashes. */
  constructor(users: readonly UserConfig[]) {
    for (const u of users) {
      if (u.tokenHash.startsWith("sha256:")) this.#bySha.set(u.tokenHash.slice(7), u);
      else this.#scryptUsers.push(u);
    }
  }

  /** The user whose token this is, or undefined. */
  authenticate(token: string): UserConfig | undefined {
    if (token.length < 8 || token.length > 512) return undefined;
    const sha = sha256Hex(token);
    const direct = this.#bySha.get(sha);
    if (direct) return direct;
    const cached = this.#cache.get(sha);
    if (cached) return cached;
    for (const u of this.#scryptUsers) {
      if (verifyToken(token, u.tokenHash)) {
        if (this.#cache.size > 1000) this.#cache.clear();
        this.#cache.set(sha, u);
        return u;
      }
    }
    return undefined;
  }

  /** The user of a request's `Authorization: Bearer <token>` header, or undefined. */
  fromRequest(req: Request): UserConfig | undefined {
    const h = req.headers.get("authorization") ?? "";
    const m = /^Bearer\s+(\S+)$/i.exec(h.trim());
    return m ? this.authenticate(m[1]) : undefined;
  }
}

function sha256Hex(s: string): string {
  return createHash("sha256").update(s, "utf8").digest("hex");
}

function safeEqual(a: Uint8Array, b: Uint8Array): boolean {
  return a.length === b.length && timingSafeEqual(a, b);
}
