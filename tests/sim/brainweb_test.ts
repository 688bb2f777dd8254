import { deepEqual, equal, ok, rejects, throws } from "node:assert/strict";
import { gzipSync } from "node:zlib";
import { readLabelVolume } from "../../core/sim/dataset.ts";
import { brainwebUrl, fetchBrainwebSubject } from "../../core/sim/brainweb.ts";
import { decodeMinc1 } from "../../core/sim/minc1.ts";
import { hasNumpy } from "./_util.ts";

const NX = 7, NY = 5, NZ = 4;
function label(i: number, j: number, k: number): number {
  return (i + 2 * j + 3 * k) % 12;
}

/** Writes a MINC1 file with SciPy's NetCDF writer (an independent implementation). */
async function scipyMinc(path: string): Promise<boolean> {
  const code = `
import numpy as np
from scipy.io import netcdf_file
f = netcdf_file("${path}", "w", version=2)
for name, n in (("zspace", ${NZ}), ("yspace", ${NY}), ("xspace", ${NX})):
    f.createDimension(name, n)
img = f.createVariable("image", "b", ("zspace", "yspace", "xspace"))
k, j, i = np.meshgrid(np.arange(${NZ}), np.arange(${NY}), np.arange(${NX}), indexing="ij")
img[:] = ((i + 2 * j + 3 * k) % 12).astype(np.int8)
img.signtype = b"unsigned"
for name, step, start in (("xspace", 0.5, -90.0), ("yspace", -0.5, 20.0), ("zspace", 0.5, -72.0)):
    v = f.createVariable(name, "d", ())
    v.step = step
    v.start = start
    v.direction_cosines = np.eye(3)["xyz".index(name[0])]
f.close()
`;
  const o = await new Deno.Command("/usr/bin/python3", { args: ["-c", code] }).output();
  return o.success;
}

Deno.test({
  name: "MINC1: a SciPy-written NetCDF volume decodes with x fastest and positive steps",
  ignore: !(await hasNumpy()),
  async fn() {
    const dir = await Deno.makeTempDir({ prefix: "petrel_minc_" });
    try {
      ok(await scipyMinc(`${dir}/a.mnc`), "scipy could not write the fixture");
      const raw = await Deno.readFile(`${dir}/a.mnc`);
      const m = decodeMinc1(gzipSync(raw), "a.mnc.gz");
      deepEqual(m.shape, [NX, NY, NZ]);
      equal(m.dtype, "unsigned byte");
      // y was stored with a negative step: flipped so that j grows with y.
      deepEqual(m.grid.voxelSizeMm, [0.5, 0.5, 0.5]);
      deepEqual(m.grid.originMm, [-90, 20 - 0.5 * (NY - 1), -72]);
      for (let k = 0; k < NZ; k++) {
        for (let j = 0; j < NY; j++) {
          for (let i = 0; i < NX; i++) {
            equal(m.data[i + NX * (j + NY * k)], label(i, NY - 1 - j, k));
          }
        }
      }
    } finally {
      await Deno.remove(dir, { recursive: true });
    }
  },
});

Deno.test("MINC1: a gzip stream inflating past the cap is refused, naming the file", () => {
  // 4 MiB of zeros compress to a few KiB; with a 1 MiB cap inflation stops early.
  const bomb = new Uint8Array(gzipSync(new Uint8Array(4 << 20)));
  ok(bomb.length < 64 << 10);
  throws(
    () => decodeMinc1(bomb, "bomb.mnc.gz", 1 << 20),
    (e: Error) =>
      e.name === "FormatError" && /^bomb\.mnc\.gz: .*inflates to more than/.test(e.message),
  );
});

Deno.test({
  name: "BrainWeb download: loopback server, cache, checksums and clear errors",
  ignore: !(await hasNumpy()),
  async fn() {
    const dir = await Deno.makeTempDir({ prefix: "petrel_bw_" });
    ok(await scipyMinc(`${dir}/src.mnc`));
    const payload = new Uint8Array(gzipSync(await Deno.readFile(`${dir}/src.mnc`)));
    let requests = 0;
    const server = Deno.serve({ hostname: "127.0.0.1", port: 0, onListen() {} }, (req) => {
      requests++;
      const u = new URL(req.url);
      const alias = u.searchParams.get("do_download_alias");
      if (alias === "subject04_crisp") return new Response(payload);
      if (alias === "subject05_crisp") return new Response("<html>no such model</html>");
      return new Response("missing", { status: 404 });
    });
    const baseUrl = `http://127.0.0.1:${server.addr.port}/cgi/brainweb1`;
    try {
      ok(brainwebUrl("04", baseUrl).includes("do_download_alias=subject04_crisp"));
      const cacheDir = `${dir}/cache`;
      const a = await fetchBrainwebSubject("04", { cacheDir, baseUrl });
      equal(a.fromCache, false);
      equal(requests, 1);
      const vol = await readLabelVolume(a.niftiPath);
      deepEqual(vol.grid.shape, [NX, NY, NZ]);
      equal(vol.labels[3 + NX * (1 + NY * 2)], label(3, NY - 1 - 1, 2));
      const sums = JSON.parse(await Deno.readTextFile(`${cacheDir}/checksums.json`));
      equal(sums["04"], a.sha256);
      const b = await fetchBrainwebSubject("04", { cacheDir, baseUrl });
      equal(b.fromCache, true);
      equal(requests, 1, "served from the cache");
      await rejects(
        fetchBrainwebSubject("04", { cacheDir, baseUrl, expectedSha256: { "04": "00ff" } }),
        /does not match the expected 00ff/,
      );
      await rejects(fetchBrainwebSubject("05", { cacheDir, baseUrl }), /expected a gzipped MINC1/);
      await rejects(fetchBrainwebSubject("06", { cacheDir, baseUrl }), /HTTP 404/);
      await rejects(fetchBrainwebSubject("6", { cacheDir, baseUrl }), /two-digit/);
    } finally {
      await server.shutdown();
      await Deno.remove(dir, { recursive: true });
    }
  },
});
