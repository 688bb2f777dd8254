/**
 * Configuration of `petrel serve`: users (with hashed tokens), per-user quotas, the recipe
 * allow-list, datasets on the server, limits and the queue. Read from a JSON file and validated
 * with zod; see `docs/server.md` for an example.
 *
 * @module
 */
import { z } from "zod";

/** A user name: also the name of the user's job folder, so restricted to safe characters. */
const userName = z.string().regex(
  /^[a-z0-9][a-z0-9_-]{0,31}$/,
  "a user name of 1-32 characters a-z, 0-9, '_' or '-', starting with a letter or digit",
);

/** A name in the recipe allow-list or the dataset list. */
const entryName = z.string().regex(
  /^[A-Za-z0-9][A-Za-z0-9_.-]{0,63}$/,
  "a name of 1-64 characters A-Z, a-z, 0-9, '_', '.' or '-'",
);

/** Resource limits of one job; every field optional in a user's quota (server defaults apply). */
export const limitsSchema = z.object({
  /** Wall-clock limit of one job in milliseconds. */
  timeoutMs: z.number().int().min(100).max(7 * 24 * 3600 * 1000),
  /** Memory cap of one job's Deno process (V8 heap) in MiB. */
  memoryMb: z.number().int().min(128).max(1024 * 1024),
  /** Maximum total size of the files a job writes to its output folder, in bytes. */
  maxOutputBytes: z.number().int().min(1024),
  /** Maximum size of one submission (recipe + uploaded inputs), in bytes. */
  maxUploadBytes: z.number().int().min(1024),
  /** Maximum number of the user's jobs that are queued or running at once. */
  maxActiveJobs: z.number().int().min(1),
});

/** Resource limits of one job. */
export type Limits = z.infer<typeof limitsSchema>;

/** One user of the server. */
export const userSchema = z.object({
  name: userName,
  /**
   * The hash of the user's token: `sha256:<hex>` or `scrypt:<N>:<salt base64>:<hash base64>`
   * (make one with `hashToken` or `petrel hash-token`).
   */
  tokenHash: z.string().regex(
    /^(sha256:[0-9a-f]{64}|scrypt:\d+:[A-Za-z0-9+/=]+:[A-Za-z0-9+/=]+)$/,
    "a token hash 'sha256:<64 hex>' or 'scrypt:<N>:<salt b64>:<hash b64>'",
  ),
  /** Per-user overrides of the server's default limits. */
  quota: limitsSchema.partial().default({}),
  /** May this user upload recipes of their own (default: the server's `allowUploadedRecipes`)? */
  allowUploadedRecipes: z.boolean().optional(),
});

/** One user of the server. */
export type UserConfig = z.infer<typeof userSchema>;

/** The whole server configuration. */
export const serverConfigSchema = z.object({
  /** Folder holding the database (`petrel.db`) and the job folders (`jobs/<user>/<id>/`). */
  dataDir: z.string().min(1),
  /** Address to listen on (default loopback only). */
  hostname: z.string().default("127.0.0.1"),
  /** Port (0 = any free port). */
  port: z.number().int().min(0).max(65535).default(8787),
  /**
   * Number of GPUs the jobs share. 0: no jobs run in the server process (a PostgreSQL database
   * and `petrel worker`s on other machines run them).
   */
  gpus: z.number().int().min(0).default(1),
  /** Number of jobs run at once on each GPU. */
  jobsPerGpu: z.number().int().min(1).default(1),
  /** What happens to jobs that were running when the server died: run again or fail. */
  onRestart: z.enum(["requeue", "fail"]).default("requeue"),
  /** How many times a job is started at most (with `onRestart: "requeue"`). */
  maxAttempts: z.number().int().min(1).default(3),
  /** Allow-list of recipes on the server: name → path of the recipe module. */
  recipes: z.record(entryName, z.string().min(1)).default({}),
  /** Datasets on the server that jobs may reference: name → path (file or folder). */
  datasets: z.record(entryName, z.string().min(1)).default({}),
  /** Model files or folders every job may read (e.g. ONNX networks). */
  models: z.array(z.string().min(1)).default([]),
  /** May users upload their own recipes (per-user override in `users[].allowUploadedRecipes`)? */
  allowUploadedRecipes: z.boolean().default(true),
  /** Default limits of every job (users' quotas override them). */
  limits: limitsSchema.default({
    timeoutMs: 30 * 60 * 1000,
    memoryMb: 4096,
    maxOutputBytes: 1 << 30,
    maxUploadBytes: 256 << 20,
    maxActiveJobs: 16,
  }),
  /**
   * PostgreSQL URL of a shared job database (`postgres://user:password@host:5432/db`); without
   * it, jobs are kept in SQLite at `<dataDir>/petrel.db`. `--db` overrides it.
   */
  db: z.string().regex(/^postgres(ql)?:\/\//, "a postgres:// URL").optional(),
  /** With a shared database: a run whose worker is silent this long is taken back (seconds). */
  leaseSeconds: z.number().int().min(10).max(3600).default(30),
  /** At most this many log lines are kept per job (the rest is dropped with a note). */
  maxLogLines: z.number().int().min(10).default(5000),
  users: z.array(userSchema).min(1, "at least one user"),
}).superRefine((cfg, ctx) => {
  const seen = new Set<string>();
  for (const [i, u] of cfg.users.entries()) {
    if (seen.has(u.name)) {
      ctx.addIssue({
        code: "custom",
        path: ["users", i, "name"],
        message: `duplicate user name '${u.name}'; expected unique names`,
      });
    }
    seen.add(u.name);
  }
});

/** The whole server configuration (after defaults are applied). */
export type ServerConfig = z.infer<typeof serverConfigSchema>;

/** The configuration as written in a file (defaults not yet applied). */
export type ServerConfigInput = z.input<typeof serverConfigSchema>;

/** Validates a configuration object, throwing one readable error listing every problem. */
export function parseServerConfig(raw: unknown): ServerConfig {
  const r = serverConfigSchema.safeParse(raw);
  if (!r.success) {
    const lines = r.error.issues.map((i) => `  ${i.path.join(".") || "(root)"}: ${i.message}`);
    throw new Error(`invalid server configuration:\n${lines.join("\n")}`);
  }
  return r.data;
}

/** Reads and validates a JSON configuration file; relative paths are resolved from its folder. */
export async function loadServerConfig(path: string): Promise<ServerConfig> {
  let raw: unknown;
  try {
    raw = JSON.parse(await Deno.readTextFile(path));
  } catch (e) {
    throw new Error(`cannot read server configuration '${path}': ${(e as Error).message}`);
  }
  const cfg = parseServerConfig(raw);
  const base = dirname(absolute(path));
  const abs = (p: string): string => (p.startsWith("/") ? p : `${base}/${p}`);
  cfg.dataDir = abs(cfg.dataDir);
  cfg.models = cfg.models.map(abs);
  for (const k of Object.keys(cfg.recipes)) cfg.recipes[k] = abs(cfg.recipes[k]);
  for (const k of Object.keys(cfg.datasets)) cfg.datasets[k] = abs(cfg.datasets[k]);
  return cfg;
}

/** The effective limits of a user: the server defaults overridden by the user's quota. */
export function userLimits(cfg: ServerConfig, user: UserConfig): Limits {
  return { ...cfg.limits, ...user.quota };
}

function absolute(p: string): string {
  return p.startsWith("/") ? p : `${Deno.cwd()}/${p}`;
}

function dirname(p: string): string {
  const i = p.lastIndexOf("/");
  return i <= 0 ? "/" : p.slice(0, i);
}
