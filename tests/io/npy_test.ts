import { deepStrictEqual as assertEquals, ok as assert } from "node:assert/strict";
import {
  decodeNpy,
  encodeNpy,
  floatToHalf,
  halfToFloat,
  type NpyDtype,
  readNpy,
  writeNpy,
} from "../../core/io/npy.ts";
import { FormatError } from "../../core/io/files.ts";
import { maxAbsDiff, randomArray } from "../_helpers.ts";
import { hasPython, python } from "./_python.ts";

const PY = await hasPython();

Deno.test("npy round trips every dtype in C and Fortran order, shape fastest first", () => {
  const shape = [4, 3, 2];
  const ints = Float32Array.from({ length: 24 }, (_, i) => (i * 7) % 23);
  const dtypes: NpyDtype[] = [
    "float32",
    "float64",
    "float16",
    "uint8",
    "int8",
    "int16",
    "uint16",
    "int32",
    "uint32",
  ];
  for (const dtype of dtypes) {
    for (const order of ["C", "F"] as const) {
      const a = decodeNpy(encodeNpy({ data: ints, shape }, { dtype, order }));
      assertEquals(a.shape, shape);
      assertEquals(a.dtype, dtype);
      assertEquals(a.fortranOrder, order === "F");
      assertEquals(a.numpyShape, order === "F" ? shape : [2, 3, 4]);
      assertEquals(maxAbsDiff(a.data, ints), 0, `${dtype} ${order}`);
    }
  }
  const f = randomArray(24, 5);
  assertEquals(decodeNpy(encodeNpy({ data: f, shape })).data, f);
});

Deno.test("float16 conversion rounds to nearest even and handles subnormals and overflow", () => {
  assertEquals(floatToHalf(1), 0x3c00);
  assertEquals(floatToHalf(-2), 0xc000);
  assertEquals(floatToHalf(65504), 0x7bff);
  assertEquals(floatToHalf(1e6), 0x7c00);
  assertEquals(floatToHalf(2 ** -24), 0x0001);
  assertEquals(floatToHalf(1 + 2 ** -11), 0x3c00); // tie → even
  assertEquals(floatToHalf(1 + 3 * 2 ** -11), 0x3c02);
  assertEquals(halfToFloat(0x3555), 0.333251953125);
  assert(Number.isNaN(halfToFloat(0x7e00)));
});

Deno.test({ name: "npy files agree with NumPy in both directions", ignore: !PY }, async () => {
  const dir = await Deno.makeTempDir();
  const data = randomArray(4 * 3 * 2, 9);
  await writeNpy(`${dir}/c.npy`, { data, shape: [4, 3, 2] });
  await writeNpy(`${dir}/f.npy`, { data, shape: [4, 3, 2] }, { order: "F" });
  await writeNpy(`${dir}/h.npy`, { data, shape: [4, 3, 2] }, { dtype: "float16" });
  const r = await python<{ c: number[]; f: number[]; h: number; sc: number[]; sf: number[] }>(`
import numpy as np, json
c = np.load("${dir}/c.npy"); f = np.load("${dir}/f.npy"); h = np.load("${dir}/h.npy")
np.save("${dir}/py_c.npy", np.arange(24, dtype=">i4").reshape(2, 3, 4))
np.save("${dir}/py_f.npy", np.asfortranarray(np.linspace(0, 1, 24).reshape(4, 3, 2)))
np.save("${dir}/py_h.npy", np.linspace(-3, 3, 24).astype(np.float16))
print(json.dumps({"c": [float(c[1, 2, 3]), float(c[0, 1, 2])], "f": [float(f[3, 2, 1]), float(f[2, 1, 0])],
  "h": float(h[1, 2, 3]), "sc": list(c.shape), "sf": list(f.shape)}))`);
  assertEquals(r.sc, [2, 3, 4]);
  assertEquals(r.sf, [4, 3, 2]);
  const at = (i: number, j: number, k: number) => data[i + 4 * (j + 3 * k)];
  assertEquals(r.c, [at(3, 2, 1), at(2, 1, 0)]);
  assertEquals(r.f, [at(3, 2, 1), at(2, 1, 0)]);
  assertEquals(r.h, halfToFloat(floatToHalf(at(3, 2, 1))));
  const pc = await readNpy(`${dir}/py_c.npy`);
  assertEquals(pc.dtype, "int32");
  assertEquals(pc.shape, [4, 3, 2]);
  assertEquals(pc.data[1 + 4 * (2 + 3 * 1)], 1 * 12 + 2 * 4 + 1);
  const pf = await readNpy(`${dir}/py_f.npy`);
  assertEquals(pf.shape, [4, 3, 2]);
  assert(pf.raw instanceof Float64Array);
  assertEquals(pf.raw[3 + 4 * (2 + 3 * 1)], (3 * 6 + 2 * 2 + 1) / 23);
  const ph = await readNpy(`${dir}/py_h.npy`);
  assertEquals(ph.dtype, "float16");
  assert(Math.abs(ph.data[23] - 3) < 1e-3);
  await Deno.remove(dir, { recursive: true });
});

Deno.test("corrupt, truncated and unsupported npy inputs give clear errors", () => {
  const good = encodeNpy({ data: new Float32Array(12), shape: [3, 4] });
  const expect = (bytes: Uint8Array, re: RegExp) => {
    let err: Error | undefined;
    try {
      decodeNpy(bytes, "x.npy");
    } catch (e) {
      err = e as Error;
    }
    assert(err instanceof FormatError, String(err));
    assert(re.test(err.message), err.message);
  };
  expect(new Uint8Array(20), /magic/);
  expect(good.subarray(0, good.length - 1), /truncated/);
  expect(good.subarray(0, 30), /truncated .npy header/);
  const complex = encodeNpy({ data: new Float32Array(12), shape: [3, 4] });
  const text = new TextDecoder("latin1").decode(complex);
  const i = text.indexOf("<f4");
  complex.set(new TextEncoder().encode("<c8"), i);
  expect(complex, /dtype '<c8' is not supported/);
  let err: Error | undefined;
  try {
    encodeNpy({ data: [1.5], shape: [1] }, { dtype: "int16" });
  } catch (e) {
    err = e as Error;
  }
  assert(err instanceof RangeError && /int16/.test(err.message));
});
