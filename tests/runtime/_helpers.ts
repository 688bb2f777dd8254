// Shared helpers of the runtime and CLI tests.
import { runSandboxed, type SandboxOptions, type SandboxResult } from "../../core/runtime/mod.ts";

/** Absolute path of a fixture recipe. */
export function fixture(name: string): string {
  return new URL(`../fixtures/recipes/${name}.ts`, import.meta.url).pathname;
}

/** Absolute path of the petrel checkout. */
export const ROOT = new URL("../../", import.meta.url).pathname.replace(/\/$/, "");

/** A scratch area: `in/data.bin`, an empty `out/` path, and `other/secret.txt` (another job). */
export interface Scratch {
  root: string;
  inDir: string;
  outDir: string;
  secret: string;
  [Symbol.asyncDispose](): Promise<void>;
}

/** Creates a {@linkcode Scratch} in a new temporary folder. */
export async function scratch(): Promise<Scratch> {
  const root = await Deno.makeTempDir({ prefix: "petrel-test-" });
  await Deno.mkdir(`${root}/in`);
  await Deno.writeFile(`${root}/in/data.bin`, new Uint8Array([1, 2, 3, 250]));
  await Deno.mkdir(`${root}/other`);
  await Deno.writeTextFile(`${root}/other/secret.txt`, "another user's data");
  return {
    root,
    inDir: `${root}/in`,
    outDir: `${root}/out`,
    secret: `${root}/other/secret.txt`,
    [Symbol.asyncDispose]: () => Deno.remove(root, { recursive: true }),
  };
}

/** Runs a fixture recipe in the sandbox with small limits. */
export function runFixture(
  name: string,
  s: Scratch,
  options: Partial<SandboxOptions> = {},
): Promise<SandboxResult> {
  return runSandboxed({
    recipe: fixture(name),
    inputs: [s.inDir],
    outDir: s.outDir,
    timeoutMs: 30_000,
    memoryMb: 512,
    maxOutputBytes: 16 << 20,
    ...options,
  });
}

/** Every file under `dir`, relative, sorted. */
export async function listTree(dir: string): Promise<string[]> {
  const out: string[] = [];
  async function rec(d: string, rel: string): Promise<void> {
    for await (const e of Deno.readDir(d)) {
      const r = rel ? `${rel}/${e.name}` : e.name;
      if (e.isDirectory) await rec(`${d}/${e.name}`, r);
      else out.push(r);
    }
  }
  await rec(dir, "");
  return out.sort();
}

/** Hex SHA-256 computed with WebCrypto (independent of core/runtime/hash.ts). */
export async function webSha256(path: string): Promise<string> {
  const d = await crypto.subtle.digest("SHA-256", await Deno.readFile(path));
  return Array.from(new Uint8Array(d), (b) => b.toString(16).padStart(2, "0")).join("");
}

/**
 * A one-node ONNX model `y = Relu(x)`, x and y float32 [1, n], encoded by hand (protobuf wire
 * format: ModelProto with IR version 7 and opset 13), so tests need no Python `onnx` package.
 */
export function singleReluOnnx(n = 2): Uint8Array {
  const bytes: number[] = [];
  const varint = (out: number[], v: number) => {
    while (v > 0x7f) {
      out.push((v & 0x7f) | 0x80);
      v >>>= 7;
    }
    out.push(v);
  };
  // field with a varint value, and field with length-delimited bytes
  const num = (field: number, v: number) => {
    const o: number[] = [];
    varint(o, field << 3);
    varint(o, v);
    return o;
  };
  const msg = (field: number, body: number[]) => {
    const o: number[] = [];
    varint(o, (field << 3) | 2);
    varint(o, body.length);
    return o.concat(body);
  };
  const str = (field: number, s: string) => msg(field, [...new TextEncoder().encode(s)]);
  const tensorValue = (name: string) =>
    str(1, name).concat(
      // TypeProto.tensor_type { elem_type FLOAT, shape { dim 1, dim n } }
      msg(2, msg(1, num(1, 1).concat(msg(2, msg(1, num(1, 1)).concat(msg(1, num(1, n))))))),
    );
  const node = str(1, "x").concat(str(2, "y"), str(4, "Relu"));
  const graph = msg(1, node).concat(
    str(2, "relu"),
    msg(11, tensorValue("x")),
    msg(12, tensorValue("y")),
  );
  bytes.push(...num(1, 7), ...msg(7, graph), ...msg(8, num(2, 13)));
  return Uint8Array.from(bytes);
}
