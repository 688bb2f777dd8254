import { deepStrictEqual as assertEquals, ok as assert, rejects } from "node:assert/strict";
import { readSinogram, sidecarPath, writeSinogram } from "../../core/io/sinogram.ts";
import { writeNpy } from "../../core/io/npy.ts";
import { FormatError } from "../../core/io/files.ts";
import { randomArray, smallScanner } from "../_helpers.ts";
import { hasPython, python } from "./_python.ts";

const PY = await hasPython();

Deno.test("sinograms round trip through .npy, .nii and .nii.gz with their sidecar", async () => {
  const dir = await Deno.makeTempDir();
  const scanner = smallScanner(3, 1);
  const data = randomArray(scanner.bins, 4);
  for (const name of ["s.npy", "t.nii", "u.nii.gz"]) {
    const json = await writeSinogram(`${dir}/${name}`, {
      data,
      scanner,
      quantity: "prompts",
      frameDurationS: 600,
      extra: { seed: 7 },
    });
    assertEquals(json, sidecarPath(`${dir}/${name}`));
    for (const p of [json, `${dir}/${name}`]) {
      const s = await readSinogram(p);
      assertEquals(s.shape, scanner.sinogramShape);
      assertEquals(s.data, data);
      assertEquals(s.scanner.spec, scanner.spec);
      assertEquals(s.sidecar.quantity, "prompts");
      assertEquals(s.sidecar.units, "counts");
      assertEquals(s.sidecar.extra, { seed: 7 });
    }
  }
  const side = JSON.parse(await Deno.readTextFile(`${dir}/s.json`));
  assertEquals(side.dataFile, "s.npy");
  assertEquals(side.shape, [33, 32, 7]);
  await Deno.remove(dir, { recursive: true });
});

Deno.test(
  { name: "a sinogram .npy loads in NumPy as (planes, views, radial)", ignore: !PY },
  async () => {
    const dir = await Deno.makeTempDir();
    const scanner = smallScanner(2, 1);
    const data = randomArray(scanner.bins, 2);
    await writeSinogram(`${dir}/a.npy`, { data, scanner, quantity: "attenuation-factors" });
    const r = await python<{ shape: number[]; v: number; units: string }>(`
import numpy as np, json
a = np.load("${dir}/a.npy"); s = json.load(open("${dir}/a.json"))
print(json.dumps({"shape": list(a.shape), "v": float(a[3, 5, 7]), "units": s["units"]}))`);
    assertEquals(r.shape, [4, 32, 33]);
    assertEquals(r.v, data[7 + 33 * (5 + 32 * 3)]);
    assertEquals(r.units, "1");
    await Deno.remove(dir, { recursive: true });
  },
);

Deno.test("bad sidecars and mismatched data give clear errors", async () => {
  const dir = await Deno.makeTempDir();
  const scanner = smallScanner(2, 1);
  await writeSinogram(`${dir}/a.npy`, {
    data: new Float32Array(scanner.bins),
    scanner,
    quantity: "randoms",
  });
  const side = JSON.parse(await Deno.readTextFile(`${dir}/a.json`));
  const tamper = async (change: (s: Record<string, unknown>) => void, re: RegExp) => {
    const s = structuredClone(side);
    change(s);
    await Deno.writeTextFile(`${dir}/b.json`, JSON.stringify(s));
    await rejects(readSinogram(`${dir}/b.json`), (e: Error) => {
      assert(e instanceof FormatError, String(e));
      assert(re.test(e.message), e.message);
      return true;
    });
  };
  await tamper((s) => (s.quantity = "photons"), /quantity/);
  await tamper((s) => (s.shape = [33, 32, 3]), /does not match the scanner's sinogram/);
  await tamper((s) => ((s.scanner as Record<string, unknown>).crystalsPerRing = 66), /scanner/);
  await tamper((s) => (s.format = "other"), /format/);
  // data file of the wrong shape
  await writeNpy(`${dir}/c.npy`, { data: new Float32Array(33 * 32 * 3), shape: [33, 32, 3] });
  await tamper((s) => (s.dataFile = "c.npy"), /data shape \[33,32,3\]/);
  await Deno.writeTextFile(`${dir}/d.json`, "{ not json");
  await rejects(readSinogram(`${dir}/d.json`), /not valid JSON/);
  await rejects(
    writeSinogram(`${dir}/e.npy`, { data: new Float32Array(5), scanner, quantity: "prompts" }),
    /has 4224 bins/,
  );
  await rejects(
    writeSinogram(`${dir}/e.raw`, {
      data: new Float32Array(scanner.bins),
      scanner,
      quantity: "prompts",
    }),
    /must end in .npy, .nii or .nii.gz/,
  );
  await Deno.remove(dir, { recursive: true });
});
