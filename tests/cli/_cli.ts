/** Shared by the CLI tests: the `petrel` command line run in-process. */
import { type CliIo, main } from "../../cli/main.ts";

/** Runs the CLI in-process and captures what it prints. */
export async function cli(...args: string[]): Promise<{ code: number; out: string; err: string }> {
  let out = "";
  let err = "";
  const io: CliIo = { out: (t) => (out += t), err: (t) => (err += t), tty: false };
  const code = await main(args, io);
  return { code, out, err };
}
