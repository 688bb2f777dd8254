/** Helpers of the simulation tests: small synthetic label volumes, ROI means, python. */
import { centredGrid } from "../../core/geometry/grid.ts";
import { type LabelVolume, labelVolume } from "../../core/sim/labels.ts";

/**
 * A small synthetic head on 1 mm voxels: scalp (6), skull (7), CSF (1), a grey-matter shell (2)
 * around white matter (3), and a CSF ventricle; `n` voxels per side.
 */
export function tinyHead(n = 48, nz = 40): LabelVolume {
  const g = centredGrid([n, n, nz], [1, 1, 1]);
  const labels = new Uint8Array(n * n * nz);
  for (let k = 0; k < nz; k++) {
    for (let j = 0; j < n; j++) {
      for (let i = 0; i < n; i++) {
        const x = g.originMm[0] + i, y = g.originMm[1] + j, z = g.originMm[2] + k;
        const r = Math.sqrt(x * x + y * y + (z * n / nz) ** 2) / (n / 2);
        let l = 0;
        if (r < 1) l = 6;
        if (r < 0.93) l = 7;
        if (r < 0.82) l = 1;
        if (r < 0.76) l = 2;
        if (r < 0.56) l = 3;
        if (Math.abs(x) < 3 && Math.abs(y) < 6 && Math.abs(z) < 5) l = 1;
        labels[i + n * (j + n * k)] = l;
      }
    }
  }
  return labelVolume(labels, g);
}

/** Mean of `values` over voxels where `mask` ≥ `min`. */
export function roiMean(values: ArrayLike<number>, mask: ArrayLike<number>, min = 0.95): number {
  let s = 0, c = 0;
  for (let i = 0; i < values.length; i++) {
    if (mask[i] >= min) {
      s += values[i];
      c++;
    }
  }
  if (c === 0) throw new Error("empty ROI");
  return s / c;
}

let py: boolean | undefined;
/** True when /usr/bin/python3 with numpy runs. */
export async function hasNumpy(): Promise<boolean> {
  if (py !== undefined) return py;
  try {
    const o = await new Deno.Command("/usr/bin/python3", {
      args: ["-c", "import numpy"],
      stdout: "null",
      stderr: "null",
    }).output();
    py = o.success;
  } catch {
    py = false;
  }
  return py;
}

/** Runs a python snippet, returns its stdout as JSON. */
export async function python<T>(code: string): Promise<T> {
  const o = await new Deno.Command("/usr/bin/python3", { args: ["-c", code] }).output();
  if (!o.success) throw new Error(new TextDecoder().decode(o.stderr));
  return JSON.parse(new TextDecoder().decode(o.stdout)) as T;
}
