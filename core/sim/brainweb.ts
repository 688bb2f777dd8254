/**
 * BrainWeb downloader for users with internet: fetches a subject's crisp label model (MINC1,
 * gzipped) from the BrainWeb site into a cache folder, checks its sha256 (given by the user, or
 * recorded in `checksums.json` at the first download and verified afterwards), converts it to a
 * uint8 NIfTI `subjectNN_crisp.nii.gz` that {@linkcode readLabelVolume} and the dataset builder
 * read. The models are free for research but may not be redistributed: petrel never bundles them.
 *
 * @module
 */

import { createHash } from "node:crypto";
import { writeNifti } from "../io/nifti.ts";
import { writeFileAtomic } from "../io/files.ts";
import { labelVolumeFromImage } from "./labels.ts";
import { decodeMinc1 } from "./minc1.ts";

/**
 * BrainWeb's download CGI.
 *
 * @example
 * ```ts
 * import { BRAINWEB_BASE_URL, brainwebUrl } from "@petrel/petrel";
 * brainwebUrl("04", BRAINWEB_BASE_URL); // the same as brainwebUrl("04")
 * ```
 */
export const BRAINWEB_BASE_URL = "https://brainweb.bic.mni.mcgill.ca/cgi/brainweb1";

/**
 * The 20 BrainWeb normal anatomical models.
 *
 * @example
 * ```ts
 * import { BRAINWEB_SUBJECTS, fetchBrainwebSubject } from "@petrel/petrel";
 * for (const subject of BRAINWEB_SUBJECTS) {
 *   await fetchBrainwebSubject(subject, { cacheDir: "data/brainweb" }); // 20 subjects, ≈ 57 MB each inflated
 * }
 * ```
 */
export const BRAINWEB_SUBJECTS: readonly string[] = [
  "04",
  "05",
  "06",
  "18",
  "20",
  "38",
  "41",
  "42",
  "43",
  "44",
  "45",
  "46",
  "47",
  "48",
  "49",
  "50",
  "51",
  "52",
  "53",
  "54",
];

/**
 * Download URL of a subject's crisp (one label per voxel) MINC1 model, gzipped.
 *
 * @example
 * ```ts
 * import { brainwebUrl } from "@petrel/petrel";
 * const url = brainwebUrl("04"); // subject04_crisp as gzipped MINC1 from BrainWeb's CGI
 * ```
 */
export function brainwebUrl(subject: string, baseUrl: string = BRAINWEB_BASE_URL): string {
  return `${baseUrl}?do_download_alias=subject${subject}_crisp&format_value=minc` +
    `&zip_value=gnuzip&download_for_real=%5BStart+download%21%5D`;
}

/** Options of {@linkcode fetchBrainwebSubject}. */
export interface BrainwebFetchOptions {
  /** Cache folder (created). */
  cacheDir: string;
  /** Base URL of the download CGI (default {@linkcode BRAINWEB_BASE_URL}; tests use loopback). */
  baseUrl?: string;
  /** Expected sha256 (hex) of the `.mnc.gz` per subject; overrides the recorded ones. */
  expectedSha256?: Record<string, string>;
  /** Progress messages. */
  log?: (msg: string) => void;
}

/** What {@linkcode fetchBrainwebSubject} returns. */
export interface BrainwebSubjectFiles {
  subject: string;
  /** The downloaded MINC1 model. */
  mincPath: string;
  /** The converted uint8 NIfTI labels. */
  niftiPath: string;
  sha256: string;
  /** True when nothing was downloaded. */
  fromCache: boolean;
}

function sha256Hex(bytes: Uint8Array): string {
  return createHash("sha256").update(bytes).digest("hex");
}

async function exists(path: string): Promise<boolean> {
  try {
    await Deno.stat(path);
    return true;
  } catch (e) {
    if (e instanceof Deno.errors.NotFound) return false;
    throw e;
  }
}

async function readChecksums(path: string): Promise<Record<string, string>> {
  if (!(await exists(path))) return {};
  const j = JSON.parse(await Deno.readTextFile(path));
  if (typeof j !== "object" || j === null || Array.isArray(j)) {
    throw new TypeError(`${path}: expected a JSON object {subject: sha256}`);
  }
  return j as Record<string, string>;
}

/**
 * Downloads (or takes from the cache) one BrainWeb subject, verifies its checksum and converts it
 * to `cacheDir/subjectNN_crisp.nii.gz`.
 *
 * @example
 * ```ts
 * import { fetchBrainwebSubject, readLabelVolume } from "@petrel/petrel";
 * const files = await fetchBrainwebSubject("04", { cacheDir: "data/brainweb", log: console.log });
 * const vol = await readLabelVolume(files.niftiPath); // data/brainweb/subject04_crisp.nii.gz
 * ```
 */
export async function fetchBrainwebSubject(
  subject: string,
  options: BrainwebFetchOptions,
): Promise<BrainwebSubjectFiles> {
  if (!/^\d\d$/.test(subject)) {
    throw new RangeError(`subject "${subject}" is not a two-digit BrainWeb id (e.g. "04")`);
  }
  const log = options.log ?? (() => {});
  const dir = options.cacheDir;
  await Deno.mkdir(dir, { recursive: true });
  const mincPath = `${dir}/subject${subject}_crisp_v.mnc.gz`;
  const niftiPath = `${dir}/subject${subject}_crisp.nii.gz`;
  const sumsPath = `${dir}/checksums.json`;
  const sums = await readChecksums(sumsPath);
  let bytes: Uint8Array;
  let fromCache = true;
  if (await exists(mincPath)) {
    bytes = await Deno.readFile(mincPath);
  } else {
    fromCache = false;
    const url = brainwebUrl(subject, options.baseUrl);
    log(`downloading subject ${subject} from ${url}`);
    let res: Response;
    try {
      res = await fetch(url);
    } catch (e) {
      throw new Error(
        `BrainWeb subject ${subject}: could not reach ${url} (${(e as Error).message}); ` +
          `expected internet access, or put subject${subject}_crisp_v.mnc.gz into ${dir}`,
        { cause: e },
      );
    }
    if (!res.ok) {
      await res.body?.cancel();
      throw new Error(
        `BrainWeb subject ${subject}: ${url} answered HTTP ${res.status}; expected 200 with a MINC file`,
      );
    }
    bytes = new Uint8Array(await res.arrayBuffer());
    const gz = bytes.length > 2 && bytes[0] === 0x1f && bytes[1] === 0x8b;
    const cdf = bytes.length > 3 && bytes[0] === 0x43 && bytes[1] === 0x44 && bytes[2] === 0x46;
    if (!gz && !cdf) {
      const head = new TextDecoder().decode(bytes.subarray(0, 80)).replace(/\s+/g, " ");
      throw new Error(
        `BrainWeb subject ${subject}: the server sent ${bytes.length} bytes starting "${head}"; ` +
          `expected a gzipped MINC1 file`,
      );
    }
  }
  const sha256 = sha256Hex(bytes);
  const expected = options.expectedSha256?.[subject] ?? sums[subject];
  if (expected && expected.toLowerCase() !== sha256) {
    throw new Error(
      `BrainWeb subject ${subject}: sha256 ${sha256} of ${
        fromCache ? mincPath : "the download"
      } does not match the expected ${expected}; delete the file to download it again`,
    );
  }
  if (!fromCache) await writeFileAtomic(mincPath, bytes);
  if (!sums[subject]) {
    sums[subject] = sha256;
    await writeFileAtomic(sumsPath, JSON.stringify(sums, null, 1) + "\n");
  }
  if (!fromCache || !(await exists(niftiPath))) {
    const m = decodeMinc1(bytes, mincPath);
    const vol = labelVolumeFromImage({
      data: m.data,
      shape: m.shape,
      grid: m.grid,
      // Integer types are accepted when every value is a label 0 … 11 (checked); floats are not.
      header: { dtype: /float|double/.test(m.dtype) ? m.dtype : "uint8" },
    }, { what: mincPath });
    await writeNifti(niftiPath, { data: vol.labels, grid: vol.grid }, {
      dtype: "uint8",
      description: `BrainWeb subject${subject} crisp labels`,
    });
    log(`wrote ${niftiPath}`);
  }
  return { subject, mincPath, niftiPath, sha256, fromCache };
}
