/**
 * `petrel serve` (the job server of `docs/server.md`) and `petrel hash-token`.
 *
 * The server wants `--allow-all`: Deno grants `/proc/<pid>` only with it, and the sandbox's
 * memory watch and the clean-up of a crashed server's jobs read it (jobs themselves always run
 * with least permissions). When the CLI runs with fewer permissions (as `deno task install`
 * installs it), `serve` starts itself again as `deno run --allow-all petrel.ts serve …` with the
 * same arguments — the CLI's `--allow-run` already allows exactly that, so this grants nothing
 * new — and passes Ctrl-C / SIGTERM on to it.
 *
 * @module
 */
import type { Command } from "commander";
import { InvalidArgumentError } from "commander";
import { generateToken, hashToken } from "../core/server/auth.ts";
import { canReadProc, serve } from "../core/server/server.ts";
import { DatabaseConfigError } from "../core/server/store_pg.ts";
import { petrelRoot } from "../core/runtime/sandbox.ts";
import { EXIT } from "./exit_codes.ts";
import type { CliIo } from "./main.ts";

/** Options of `petrel serve`. */
export interface ServeCliOptions {
  /** Server configuration file. */
  config: string;
  /** Port (overrides the configuration). */
  port?: number;
  /** Address (overrides the configuration). */
  hostname?: string;
  /** PostgreSQL URL of a shared job database (overrides the configuration's `db`). */
  db?: string;
}

function port(v: string): number {
  const n = Number(v);
  if (!Number.isInteger(n) || n < 0 || n > 65535) {
    throw new InvalidArgumentError("--port must be an integer from 0 to 65535.");
  }
  return n;
}

/** Environment marker of the re-started server process (stops a second re-start). */
const CHILD_MARK = "PETREL_SERVE_ALLOW_ALL";

function hasAllPermissions(): boolean {
  const names = ["net", "sys", "ffi", "run", "env", "read", "write"] as const;
  return names.every((name) => Deno.permissions.querySync({ name }).state === "granted");
}

/** Whether this process must start itself again with `--allow-all` (see the module text). */
export function needsAllowAll(): boolean {
  return Deno.env.get(CHILD_MARK) !== "1" && !(hasAllPermissions() && canReadProc());
}

/** Runs `petrel <args>` again with `--allow-all`, forwarding Ctrl-C/SIGTERM; its exit status. */
export async function restartWithAllowAll(args: readonly string[]): Promise<number> {
  const root = petrelRoot();
  const child = new Deno.Command(Deno.execPath(), {
    args: ["run", "--allow-all", `--config=${root}/deno.json`, `${root}/petrel.ts`, ...args],
    env: { [CHILD_MARK]: "1" },
    stdin: "inherit",
    stdout: "inherit",
    stderr: "inherit",
  }).spawn();
  const forward = (sig: Deno.Signal) => () => {
    try {
      child.kill(sig);
    } catch {
      // already gone
    }
  };
  const handlers = (["SIGINT", "SIGTERM"] as const).map((s) => [s, forward(s)] as const);
  for (const [s, h] of handlers) Deno.addSignalListener(s, h);
  try {
    return (await child.status).code;
  } finally {
    for (const [s, h] of handlers) Deno.removeSignalListener(s, h);
  }
}

async function runServer(o: ServeCliOptions, io: CliIo): Promise<number> {
  let server;
  try {
    server = await serve({ config: o.config, port: o.port, hostname: o.hostname, db: o.db });
  } catch (e) {
    io.err(`petrel serve: ${(e as Error).message}\n`);
    // An unusable database (unreachable, refused login, newer schema) is a usage error (2).
    return e instanceof DatabaseConfigError ? EXIT.usage : EXIT.input;
  }
  const stop = () => void server.shutdown();
  for (const sig of ["SIGINT", "SIGTERM"] as const) Deno.addSignalListener(sig, stop);
  await server.finished;
  for (const sig of ["SIGINT", "SIGTERM"] as const) Deno.removeSignalListener(sig, stop);
  return EXIT.ok;
}

/** Adds `serve` and `hash-token` to the program; `setCode` receives the exit status. */
export function addServeCommands(
  program: Command,
  io: CliIo,
  setCode: (code: number) => void,
): void {
  program.command("serve")
    .description(
      "start the shared job server: HTTP API, web page with the viewer, sandboxed jobs (docs/server.md)",
    )
    .requiredOption("-c, --config <server.json>", "server configuration (JSON)")
    .option("-p, --port <n>", "port (overrides the configuration; 0 = any free port)", port)
    .option("--hostname <address>", "address to listen on (overrides the configuration)")
    .option("--db <url>", "shared PostgreSQL job database (postgres://…; default: SQLite)")
    .addHelpText(
      "after",
      "\nThe server runs with --allow-all (it restarts itself so when the CLI has fewer\n" +
        "permissions): Deno grants /proc/<pid> only then, which the memory watch of jobs and the\n" +
        "clean-up after a crash read. Jobs always run sandboxed. A token for the configuration:\n" +
        "petrel hash-token. Stop with Ctrl-C (running jobs are recovered at the next start).",
    )
    .action(async (o: ServeCliOptions) => {
      const isChild = Deno.env.get(CHILD_MARK) === "1";
      if (!isChild && !(hasAllPermissions() && canReadProc())) {
        const args = ["serve", "--config", o.config];
        if (o.port !== undefined) args.push("--port", String(o.port));
        if (o.hostname !== undefined) args.push("--hostname", o.hostname);
        if (o.db !== undefined) args.push("--db", o.db);
        return setCode(await restartWithAllowAll(args));
      }
      setCode(await runServer(o, io));
    });

  program.command("hash-token")
    .description("print a new token (or the given one) and its hash for the server configuration")
    .argument("[token]", "a token you chose (default: 32 random bytes)")
    .option("--scrypt", "hash with scrypt (for tokens people chose) instead of sha256")
    .action((token: string | undefined, o: { scrypt?: boolean }) => {
      const t = token ?? generateToken();
      io.out(
        JSON.stringify({
          token: t,
          tokenHash: hashToken(t, { algorithm: o.scrypt ? "scrypt" : "sha256" }),
        }) + "\n",
      );
      setCode(EXIT.ok);
    });
}
