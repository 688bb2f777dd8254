/**
 * `deno task install`: writes a `petrel` command that runs this checkout's `petrel.ts` with the
 * absolute path of the Deno that runs the installer (`Deno.execPath()`), so it also works when
 * Deno came from `npx -y deno@…` and no `deno` is on `PATH` (which `deno install`'s own shim
 * needs). A POSIX `sh` script; the permissions are the CLI's (docs/cli.md).
 *
 * ```sh
 * deno task install                 # → $DENO_INSTALL_ROOT/bin/petrel, default ~/.deno/bin/petrel
 * deno task install --root /opt/x   # → /opt/x/bin/petrel
 * ```
 *
 * @module
 */
import { writeFileAtomic } from "../core/io/files.ts";

/** Permissions the installed command runs the CLI with. */
export const CLI_PERMISSIONS: readonly string[] = [
  "--allow-read",
  "--allow-write",
  "--allow-run",
  "--allow-env",
];

/** Quotes a string for `sh` (single quotes; embedded ones closed, escaped and reopened). */
export function shQuote(s: string): string {
  return `'${s.replaceAll("'", `'\\''`)}'`;
}

/** The text of the command script. */
export function shimScript(denoPath: string, petrelRoot: string): string {
  const args = [
    denoPath,
    "run",
    "--quiet",
    ...CLI_PERMISSIONS,
    `--config=${petrelRoot}/deno.json`,
    `${petrelRoot}/petrel.ts`,
  ];
  return "#!/bin/sh\n" +
    "# petrel command written by `deno task install` (cli/install.ts); rerun it after moving\n" +
    "# the checkout or the Deno executable.\n" +
    `exec ${args.map(shQuote).join(" ")} "$@"\n`;
}

/** Writes `<root>/bin/<name>` (mode 755) and returns its path. */
export async function installCommand(
  options: { root?: string; name?: string; denoPath?: string } = {},
): Promise<string> {
  const home = Deno.env.get("HOME");
  const root = options.root ?? Deno.env.get("DENO_INSTALL_ROOT") ??
    (home ? `${home}/.deno` : undefined);
  if (!root) throw new Error("no install root: set HOME or DENO_INSTALL_ROOT, or pass --root");
  const name = options.name ?? "petrel";
  if (!/^[A-Za-z0-9][A-Za-z0-9_.-]*$/.test(name)) {
    throw new Error(`--name "${name}" must be a plain file name`);
  }
  const petrelRoot = new URL("..", import.meta.url).pathname.replace(/\/$/, "");
  const path = `${root}/bin/${name}`;
  await Deno.mkdir(`${root}/bin`, { recursive: true });
  await writeFileAtomic(path, shimScript(options.denoPath ?? Deno.execPath(), petrelRoot));
  await Deno.chmod(path, 0o755);
  return path;
}

if (import.meta.main) {
  const args = [...Deno.args];
  const take = (flag: string): string | undefined => {
    const i = args.indexOf(flag);
    if (i < 0) return undefined;
    const v = args[i + 1];
    if (v === undefined || v.startsWith("-")) {
      console.error(`install: ${flag} needs a value`);
      Deno.exit(2);
    }
    args.splice(i, 2);
    return v;
  };
  if (args.includes("--help") || args.includes("-h")) {
    console.log("usage: deno task install [--root DIR] [--name petrel]");
    Deno.exit(0);
  }
  const root = take("--root");
  const name = take("--name");
  if (args.length) {
    console.error(`install: unknown argument ${args[0]}; expected --root DIR or --name NAME`);
    Deno.exit(2);
  }
  try {
    const path = await installCommand({ root, name });
    console.log(`installed ${path} (runs ${Deno.execPath()})`);
    const dir = path.slice(0, path.lastIndexOf("/"));
    if (!(Deno.env.get("PATH") ?? "").split(":").includes(dir)) {
      console.log(`add it to your PATH: export PATH="${dir}:$PATH"`);
    }
  } catch (e) {
    console.error(`install: ${(e as Error).message}`);
    Deno.exit(1);
  }
}
