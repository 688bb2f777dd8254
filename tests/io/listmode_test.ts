import { deepStrictEqual, ok, rejects, throws } from "node:assert/strict";
import { tofParameters } from "../../core/geometry/tof.ts";
import {
  decodeListMode,
  encodeListMode,
  histogramListMode,
  type ListModeEvents,
  listModeGeometry,
  readListMode,
  writeListMode,
} from "../../core/io/listmode.ts";
import { readSinogram, writeSinogram } from "../../core/io/sinogram.ts";
import { FormatError } from "../../core/io/files.ts";
import { randomArray, smallScanner } from "../_helpers.ts";
import { hasPython, python } from "./_python.ts";

const PY = await hasPython();
const TOF = { bins: 5, binWidthPs: 200, fwhmPs: 400 };

function events(): ListModeEvents {
  return {
    count: 3,
    crystals: {
      crystal1: Int32Array.of(0, 17, 40),
      ring1: Int32Array.of(0, 1, 2),
      crystal2: Int32Array.of(32, 50, 9),
      ring2: Int32Array.of(1, 1, 0),
    },
    tofBin: Int32Array.of(0, 2, 4),
    prompt: Uint8Array.of(1, 0, 1),
  };
}

Deno.test("list-mode events round trip through the structured .npy and sidecar", async () => {
  const dir = await Deno.makeTempDir();
  const scanner = smallScanner(3, 2);
  const ev = events();
  const json = await writeListMode(`${dir}/ev.npy`, {
    events: ev,
    scanner,
    tof: TOF,
    extra: { seed: 1 },
  });
  for (const p of [json, `${dir}/ev.npy`]) {
    const r = await readListMode(p);
    deepStrictEqual(r.events, ev);
    deepStrictEqual(r.scanner!.spec, scanner.spec);
    deepStrictEqual(r.tof, tofParameters(TOF));
    deepStrictEqual(r.sidecar.extra, { seed: 1 });
  }
  const xyz: ListModeEvents = {
    count: 2,
    endpoints: Float32Array.of(0, -300, 1, 0, 300, 1, -5, 3, 2, 7, 8, -1),
    tofMm: Float32Array.of(12.5, -3),
  };
  deepStrictEqual(decodeListMode(encodeListMode(xyz)), xyz);
  await Deno.remove(dir, { recursive: true });
});

Deno.test(
  { name: "a list-mode .npy loads in NumPy as a structured array", ignore: !PY },
  async () => {
    const dir = await Deno.makeTempDir();
    await writeListMode(`${dir}/e.npy`, {
      events: events(),
      scanner: smallScanner(3, 2),
      tof: TOF,
    });
    const r = await python<{ names: string[]; tof: number[]; c2: number }>(`
import numpy as np, json
a = np.load("${dir}/e.npy")
print(json.dumps({"names": list(a.dtype.names), "tof": a["tof_bin"].tolist(), "c2": int(a[1]["crystal2"])}))`);
    deepStrictEqual(r.names, ["crystal1", "ring1", "crystal2", "ring2", "tof_bin", "prompt"]);
    deepStrictEqual(r.tof, [0, 2, 4]);
    deepStrictEqual(r.c2, 50);
    // ... and NumPy's own structured arrays (other widths, big-endian) read back in petrel.
    await python(`
import numpy as np
a = np.zeros(2, dtype=[("x1", ">f8"), ("y1", "<f4"), ("z1", "<f4"), ("x2", "<f4"), ("y2", "<f4"), ("z2", "<f4"), ("tof_bin", "<u2"), ("prompt", "?")])
a["x1"] = [1.5, -2]; a["tof_bin"] = [3, 1]; a["prompt"] = [True, False]
np.save("${dir}/np.npy", a); print("{}")`);
    const ev = decodeListMode(await Deno.readFile(`${dir}/np.npy`));
    deepStrictEqual([ev.endpoints![0], ev.endpoints![6]], [1.5, -2]);
    deepStrictEqual(ev.tofBin, Int32Array.of(3, 1));
    deepStrictEqual(ev.prompt, Uint8Array.of(1, 0));
    await Deno.remove(dir, { recursive: true });
  },
);

Deno.test("bad list-mode files and events give clear errors", async () => {
  const dir = await Deno.makeTempDir();
  const scanner = smallScanner(3, 2);
  await writeListMode(`${dir}/ok.npy`, { events: events(), scanner, tof: TOF });
  const side = JSON.parse(await Deno.readTextFile(`${dir}/ok.json`));
  const tamper = async (f: (s: Record<string, unknown>) => void, re: RegExp) => {
    const s = structuredClone(side);
    f(s);
    await Deno.writeTextFile(`${dir}/bad.json`, JSON.stringify(s));
    await rejects(
      readListMode(`${dir}/bad.json`),
      (e: Error) => e instanceof FormatError && re.test(e.message),
    );
  };
  await tamper((s) => s.eventCount = 4, /holds 3 events but the sidecar says 4/);
  await tamper((s) => delete s.scanner, /crystal-pair events need a "scanner"/);
  await tamper((s) => delete s.tof, /carry TOF but the sidecar has no "tof"/);
  await tamper((s) => (s.tof = { ...TOF, bins: 4 }), /tof_bin 4 outside 0 … 3/);
  await tamper(
    (s) => (s.scanner = { ...side.scanner, rings: 2, maxRingDifference: 1 }),
    /ring 2; the scanner has crystals 0 … 63 and rings 0 … 1/,
  );
  await tamper((s) => s.dataFile = "../x.npy", /does not exist|outside/);
  await tamper((s) => s.format = "x", /invalid list-mode sidecar at "format"/);
  throws(() => decodeListMode(new Uint8Array(20)), /not a .npy file/);
  const bytes = encodeListMode(events());
  throws(() => decodeListMode(bytes.subarray(0, bytes.length - 3)), /truncated/);
  throws(
    () => encodeListMode({ ...events(), endpoints: new Float32Array(18) }),
    /exactly one of crystals and endpoints/,
  );
  await rejects(
    writeListMode(`${dir}/e.npy`, { events: events(), scanner }),
    /need the TOF parameters/,
  );
  await Deno.remove(dir, { recursive: true });
});

Deno.test("crystal pairs map onto the sinogram LORs, either orientation; histogramming drops what lies outside", () => {
  const scanner = smallScanner(3, 1);
  const tof = tofParameters(TOF);
  const lors = scanner.lors();
  const nb = scanner.bins;
  // One event per sinogram bin, every other one recorded from the far crystal end.
  const c1 = [], r1 = [], c2 = [], r2 = [], t = [];
  for (let p = 0; p < scanner.planes.length; p++) {
    for (let v = 0; v < scanner.views; v++) {
      for (let r = 0; r < scanner.radialBins; r++) {
        const [a, b] = scanner.crystalPair(r, v);
        const pl = scanner.planes[p];
        const rev = (r + v + p) % 2 === 1;
        c1.push(rev ? b : a), r1.push(rev ? pl.ring2 : pl.ring1);
        c2.push(rev ? a : b), r2.push(rev ? pl.ring1 : pl.ring2);
        t.push(rev ? 4 - ((r + v) % 5) : (r + v) % 5);
      }
    }
  }
  // plus one radially trimmed pair (neighbouring crystals) and one ring difference too large
  c1.push(0, 0), r1.push(0, 0), c2.push(1, 32), r2.push(0, 2), t.push(0, 0);
  const ev: ListModeEvents = {
    count: c1.length,
    crystals: {
      crystal1: Int32Array.from(c1),
      ring1: Int32Array.from(r1),
      crystal2: Int32Array.from(c2),
      ring2: Int32Array.from(r2),
    },
    tofBin: Int32Array.from(t),
  };
  const g = listModeGeometry(scanner, ev, tof);
  for (let e = 0; e < nb; e++) {
    if (g.sinogramBins[e] !== e) throw new Error(`event ${e} → bin ${g.sinogramBins[e]}`);
    deepStrictEqual(
      g.lors.endpoints.subarray(6 * e, 6 * e + 6),
      lors.endpoints.subarray(6 * e, 6 * e + 6),
    );
  }
  deepStrictEqual([g.sinogramBins[nb], g.sinogramBins[nb + 1]], [-1, -1]);
  const h = histogramListMode(scanner, ev, { tof });
  ok(h.dropped === 2);
  for (let e = 0; e < nb; e++) {
    const want = (e % 33 + Math.floor(e / 33) % 32) % 5; // canonical TOF bin of event e
    ok(h.data[e + nb * want] === 1, `bin ${e}`);
  }
  ok(h.data.reduce((a, b) => a + b) === nb);
  // A non-zero TOF centre offset makes reversed events unbinnable into a TOF sinogram.
  throws(
    () => histogramListMode(scanner, ev, { tof: tofParameters({ ...TOF, centreOffsetMm: 2 }) }),
    /non-zero centre offset/,
  );
});

Deno.test("TOF sinograms round trip in the sinogram format (4-D shape, tof block)", async () => {
  const dir = await Deno.makeTempDir();
  const scanner = smallScanner();
  const data = randomArray(scanner.bins * 5, 1);
  await writeSinogram(`${dir}/t.npy`, { data, scanner, quantity: "prompts", tof: TOF });
  const s = await readSinogram(`${dir}/t.npy`);
  deepStrictEqual(s.shape, [33, 32, 1, 5]);
  deepStrictEqual(s.data, data);
  deepStrictEqual(s.tof, tofParameters(TOF));
  deepStrictEqual(s.sidecar.axes, ["radial", "views", "planes", "tof"]);
  await rejects(
    writeSinogram(`${dir}/u.npy`, {
      data: data.subarray(1),
      scanner,
      quantity: "prompts",
      tof: TOF,
    }),
    /has 5280 bins/,
  );
  const side = JSON.parse(await Deno.readTextFile(`${dir}/t.json`));
  delete side.axes; // optional: the shape and the tof block say it all
  await Deno.writeTextFile(`${dir}/t.json`, JSON.stringify(side));
  deepStrictEqual((await readSinogram(`${dir}/t.json`)).data, data);
  delete side.tof;
  await Deno.writeTextFile(`${dir}/t.json`, JSON.stringify(side));
  await rejects(readSinogram(`${dir}/t.json`), /a 4-D shape needs a "tof" block/);
  await Deno.remove(dir, { recursive: true });
});
