import { deepStrictEqual as assertEquals, ok as assert, rejects } from "node:assert/strict";
import {
  explainFileError,
  FilePermissionError,
  writeFileAtomic,
  writeFilesAtomic,
} from "../../core/io/files.ts";
import { writeNifti } from "../../core/io/nifti.ts";
import { centredGrid } from "../../core/geometry/grid.ts";

async function listing(dir: string): Promise<string[]> {
  const names: string[] = [];
  for await (const e of Deno.readDir(dir)) names.push(e.name);
  return names.sort();
}

Deno.test("atomic writes leave only the final file and replace old content whole", async () => {
  const dir = await Deno.makeTempDir();
  await writeFileAtomic(`${dir}/a.txt`, "first");
  await writeFileAtomic(`${dir}/a.txt`, "second");
  assertEquals(await Deno.readTextFile(`${dir}/a.txt`), "second");
  assertEquals(await listing(dir), ["a.txt"]);
  await Deno.remove(dir, { recursive: true });
});

Deno.test("a failed write leaves neither a temporary nor a half-written file", async () => {
  const dir = await Deno.makeTempDir();
  await writeFileAtomic(`${dir}/keep.nii`, "old");
  // the target is a directory: the rename fails after the temporary file was written
  await Deno.mkdir(`${dir}/target.nii`);
  await rejects(writeFileAtomic(`${dir}/target.nii`, new Uint8Array(1000)));
  assertEquals(await listing(dir), ["keep.nii", "target.nii"]);
  // a bad grid makes writeNifti fail before anything is written
  await rejects(
    writeNifti(`${dir}/keep.nii`, {
      data: new Float32Array(3),
      grid: centredGrid([2, 2, 1], [1, 1, 1]),
    }),
    /holds 4 values but the data has 3/,
  );
  assertEquals(await Deno.readTextFile(`${dir}/keep.nii`), "old");
  // a multi-file write whose second rename fails removes the temporaries
  await rejects(
    writeFilesAtomic([{ path: `${dir}/x.hv`, data: "h" }, {
      path: `${dir}/missing/x.v`,
      data: "d",
    }]),
    /folder does not exist/,
  );
  assertEquals(await listing(dir), ["keep.nii", "target.nii"]);
  await Deno.remove(dir, { recursive: true });
});

Deno.test("permission errors name the missing --allow flag", () => {
  // deno-lint-ignore no-explicit-any
  const NotCapable = (Deno.errors as any).NotCapable ?? Deno.errors.PermissionDenied;
  const e = explainFileError(new NotCapable("Requires write access"), "write", "/out/x.nii");
  assert(e instanceof FilePermissionError);
  assert(/--allow-write=\/out\/x\.nii/.test(e.message), e.message);
  const r = explainFileError(new Deno.errors.PermissionDenied("denied"), "read", "/x.nii");
  assert(/--allow-read/.test(r.message) && /owner and mode/.test(r.message), r.message);
});

/** True when file modes are enforced for this user (not root): probe a read-only folder. */
function modesEnforced(): boolean {
  const dir = Deno.makeTempDirSync();
  Deno.chmodSync(dir, 0o500);
  try {
    Deno.writeFileSync(`${dir}/probe`, new Uint8Array(1));
    return false;
  } catch {
    return true;
  } finally {
    Deno.chmodSync(dir, 0o700);
    Deno.removeSync(dir, { recursive: true });
  }
}

Deno.test({
  name: "a write into a read-only folder reports a permission problem",
  ignore: !modesEnforced(), // root ignores file modes
}, async () => {
  const dir = await Deno.makeTempDir();
  await Deno.chmod(dir, 0o500);
  try {
    await rejects(writeFileAtomic(`${dir}/x.bin`, new Uint8Array(4)), FilePermissionError);
  } finally {
    await Deno.chmod(dir, 0o700);
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("a process without --allow-write gets an error naming the flag", async () => {
  const dir = await Deno.makeTempDir();
  const script = `${dir}/w.ts`;
  const files = new URL("../../core/io/files.ts", import.meta.url).href;
  await Deno.writeTextFile(
    script,
    `import { writeFileAtomic } from "${files}";
try { await writeFileAtomic("${dir}/y.bin", new Uint8Array(1)); } catch (e) { console.log((e as Error).message); }`,
  );
  const out = await new Deno.Command(Deno.execPath(), {
    args: ["run", "--no-lock", `--allow-read=${dir}`, script],
    stdout: "piped",
    stderr: "piped",
    cwd: new URL("../..", import.meta.url).pathname,
  }).output();
  const text = new TextDecoder().decode(out.stdout);
  assert(/--allow-write=/.test(text), text + new TextDecoder().decode(out.stderr));
  await Deno.remove(dir, { recursive: true });
});
