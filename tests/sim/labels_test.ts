import { equal, ok, throws } from "node:assert/strict";
import { centredGrid } from "../../core/geometry/grid.ts";
import {
  BRAINWEB_SHAPE,
  labelBoundingBox,
  labelVolume,
  labelVolumeFromImage,
} from "../../core/sim/labels.ts";

const g = centredGrid([4, 3, 2], [1, 1, 1]);

Deno.test("labels: a bad label volume gives a clear error", () => {
  throws(() => labelVolume(new Float32Array(24), g), /dtype Float32Array; expected uint8/);
  throws(() => labelVolume(new Uint8Array(23), g), /holds 23 voxels; expected 24/);
  const bad = new Uint8Array(24);
  bad[5] = 12;
  throws(() => labelVolume(bad, g), /label 12 at voxel 5.*expected labels 0 … 11/);
  throws(
    () => labelVolume(new Uint8Array(24), g, { expectShape: BRAINWEB_SHAPE }),
    /shape \[4, 3, 2\]; expected \[362, 434, 362\]/,
  );
  const img = { data: new Float32Array(24), shape: [4, 3, 2], grid: g };
  throws(
    () => labelVolumeFromImage({ ...img, header: { dtype: "int16" } }, { what: "x.nii" }),
    /x.nii: voxels are stored as int16; expected uint8/,
  );
  throws(
    () => labelVolumeFromImage({ ...img, shape: [4, 3, 2, 2] }),
    /expected a 3-D volume/,
  );
  const frac = new Float32Array(24);
  frac[3] = 1.5;
  throws(() => labelVolumeFromImage({ ...img, data: frac }), /voxel 3 holds 1.5/);
  throws(() => labelVolumeFromImage({ ...img, axisAligned: false }), /rotated or flipped/);
});

Deno.test("labels: a good volume passes and its bounding box is right", () => {
  const d = new Uint8Array(24);
  d[1 + 4 * (2 + 3 * 1)] = 2; // (1, 2, 1)
  d[3 + 4 * (0 + 3 * 1)] = 3; // (3, 0, 1)
  const v = labelVolumeFromImage({ data: Float32Array.from(d), shape: [4, 3, 2], grid: g });
  equal(v.labels[1 + 4 * (2 + 3 * 1)], 2);
  const box = labelBoundingBox(v, [2, 3]);
  equal(JSON.stringify(box), JSON.stringify({ min: [1, 0, 1], max: [3, 2, 1], count: 2 }));
  throws(() => labelBoundingBox(v, [7]), /none of the labels \[7\]/);
  ok(v.grid.shape[0] === 4);
});
