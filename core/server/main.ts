/**
 * Command line of the server, until `petrel serve` is wired into the CLI:
 *
 * ```sh
 * deno run --allow-all core/server/main.ts --config server.json [--port 8787] [--hostname H]
 * deno run core/server/main.ts hash-token [--scrypt] [TOKEN]   # prints a token and its hash
 * ```
 *
 * `--allow-all` because Deno grants `/proc/<pid>` only with it, and the sandbox's memory watch and
 * the clean-up of a crashed server's jobs read it; the jobs themselves run with least permissions.
 *
 * @module
 */
import { generateToken, hashToken } from "./auth.ts";
import { serve } from "./server.ts";

/** Runs the server command line with `args`; resolves with the exit code. */
export async function main(args: string[]): Promise<number> {
  if (args[0] === "hash-token") {
    const scrypt = args.includes("--scrypt");
    const token = args.slice(1).find((a) => !a.startsWith("--")) ?? generateToken();
    console.log(JSON.stringify({
      token,
      tokenHash: hashToken(token, { algorithm: scrypt ? "scrypt" : "sha256" }),
    }));
    return 0;
  }
  let config: string | undefined;
  let port: number | undefined;
  let hostname: string | undefined;
  for (let i = 0; i < args.length; i++) {
    const a = args[i];
    if (a === "--config") config = args[++i];
    else if (a === "--port") port = Number(args[++i]);
    else if (a === "--hostname") hostname = args[++i];
    else if (a === "--help" || a === "-h") {
      console.log(
        "usage: petrel serve --config <server.json> [--port N] [--hostname H]\n" +
          "       petrel serve hash-token [--scrypt] [TOKEN]",
      );
      return 0;
    } else {
      console.error(`unknown argument '${a}'; expected --config, --port, --hostname or hash-token`);
      return 2;
    }
  }
  if (!config) {
    console.error("missing --config <server.json>; expected the server configuration file");
    return 2;
  }
  if (port !== undefined && !(Number.isInteger(port) && port >= 0 && port < 65536)) {
    console.error("--port must be an integer from 0 to 65535");
    return 2;
  }
  let server;
  try {
    server = await serve({ config, port, hostname });
  } catch (e) {
    console.error(`petrel serve: ${(e as Error).message}`);
    return 1;
  }
  for (const sig of ["SIGINT", "SIGTERM"] as const) {
    Deno.addSignalListener(sig, () => void server.shutdown());
  }
  await server.finished;
  return 0;
}

if (import.meta.main) Deno.exit(await main(Deno.args));
