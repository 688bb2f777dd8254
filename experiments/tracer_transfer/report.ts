/**
 * Rows, their file (`rows.jsonl`) and the Markdown tables of the tracer-transfer experiment:
 * mean ± sd per method, paired DDIP-HQS differences, and lesion recovery per lesion class.
 *
 * @module
 */

/** Recovery of one lesion in one reconstruction. */
export interface LesionRow {
  /** "hot" or "cold" × "mr-visible" or "mr-invisible", e.g. "hot mr-invisible". */
  kind: string;
  radiusMm: number;
  /** Mean in the lesion / true mean in the lesion. */
  recovery: number;
  /** CRC against the local background shell. */
  crc: number;
  /** With several seeds (`--samples`): recovery of the mean image over the chains. */
  meanRecovery?: number;
  /** With several seeds: mean voxel-wise std over the chains in the lesion (activity units). */
  sd?: number;
  /** With several seeds: the same in the lesion's background shell. */
  sdBackground?: number;
}

/** One reconstruction of one condition. */
export interface Row {
  subject: string;
  centre: number;
  tracer: string;
  counts: number;
  realisation: number;
  /** "fine" (independent of the reconstruction operator) or "operator" (the inverse crime). */
  simulator: string;
  method: string;
  setting: string;
  psnr: number;
  ssim: number;
  nrmse: number;
  /** CRC of the lesion the stack was centred on. */
  crc: number;
  seconds: number;
  scaleRatio?: number;
  /** Every lesion that reaches into the stack. */
  lesions?: LesionRow[];
  [extra: string]: unknown;
}

/** The key of a condition (what a paired comparison matches on). */
export function conditionKey(
  r: Pick<Row, "subject" | "centre" | "tracer" | "counts" | "realisation"> & { simulator?: string },
): string {
  return `${
    r.simulator ?? "operator"
  }|${r.subject}|${r.centre}|${r.tracer}|${r.counts}|${r.realisation}`;
}

/** Reads `rows.jsonl`; a line cut by a kill is reported through `log` and skipped. */
export async function readRows(path: string, log: (m: string) => void): Promise<Row[]> {
  let text: string;
  try {
    text = await Deno.readTextFile(path);
  } catch (e) {
    if (e instanceof Deno.errors.NotFound) return [];
    throw e;
  }
  const rows: Row[] = [];
  const lines = text.split("\n");
  for (let i = 0; i < lines.length; i++) {
    if (!lines[i].trim()) continue;
    try {
      const r = JSON.parse(lines[i]) as Row;
      r.simulator ??= "operator"; // rows written before the fine simulator existed
      rows.push(r);
    } catch {
      // a line cut by a kill mid-write: that condition simply runs again
      log(`${path}:${i + 1} is not a complete JSON row; ignoring it`);
    }
  }
  return rows;
}

function mean(v: number[]): number {
  return v.reduce((a, b) => a + b, 0) / v.length;
}
function sd(v: number[]): number {
  if (v.length < 2) return 0;
  const m = mean(v);
  return Math.sqrt(v.reduce((a, b) => a + (b - m) ** 2, 0) / (v.length - 1));
}
function pm(v: number[], d: number): string {
  return v.length > 1 ? `${mean(v).toFixed(d)} ± ${sd(v).toFixed(d)}` : mean(v).toFixed(d);
}

/** Markdown tables of `rows`, one block per simulator × tracer × count level. */
export function table(rows: Row[], labels: Record<string, string>): string {
  const lines: string[] = [];
  const keys = [...new Set(rows.map((r) => `${r.simulator}|${r.tracer}|${r.counts}`))];
  for (const key of keys) {
    const [simulator, tracer, counts] = key.split("|");
    lines.push(
      `\n### ${tracer === "fdg" ? "FDG (in distribution)" : `${tracer} (out of distribution)`}, ${
        Number(counts).toLocaleString("en-US")
      } true counts per slice, ${simulator} simulator\n`,
    );
    lines.push("| method | PSNR (dB) | SSIM | NRMSE | lesion CRC | time (s) | n |");
    lines.push("|---|---|---|---|---|---|---|");
    const sub = rows.filter((r) =>
      r.simulator === simulator && r.tracer === tracer && r.counts === Number(counts)
    );
    for (const method of [...new Set(sub.map((r) => r.method))]) {
      const rs = sub.filter((r) => r.method === method);
      const f = (k: keyof Row, d: number) => pm(rs.map((r) => r[k] as number), d);
      lines.push(
        `| ${labels[method] ?? method} | ${f("psnr", 2)} | ${f("ssim", 4)} | ${f("nrmse", 4)} | ${
          f("crc", 3)
        } | ${f("seconds", 1)} | ${rs.length} |`,
      );
    }
    lines.push(...paired(sub, labels), ...lesionTable(sub, labels), ...spreadTable(sub, labels));
  }
  return lines.join("\n") + "\n";
}

/**
 * DDIP-HQS minus each other method on the same data (subject, stack, realisation): the paired
 * differences remove the variation between stacks and noise draws that the ± of the table holds.
 */
export function paired(sub: Row[], labels: Record<string, string>): string[] {
  const hqs = new Map(sub.filter((r) => r.method === "ddip-hqs").map((r) => [conditionKey(r), r]));
  if (hqs.size === 0) return [];
  const out = [
    "",
    "| DDIP-HQS minus | ΔPSNR (dB) | wins | ΔSSIM | wins | pairs |",
    "|---|---|---|---|---|---|",
  ];
  for (const method of [...new Set(sub.map((r) => r.method))]) {
    if (method === "ddip-hqs") continue;
    const pairs = sub.filter((r) => r.method === method && hqs.has(conditionKey(r)))
      .map((r) => [hqs.get(conditionKey(r))!, r] as const);
    if (pairs.length === 0) continue;
    const dp = pairs.map(([a, b]) => a.psnr - b.psnr);
    const ds = pairs.map(([a, b]) => a.ssim - b.ssim);
    const sgn = (v: number[], d: number) => `${mean(v) >= 0 ? "+" : ""}${pm(v, d)}`;
    out.push(
      `| ${labels[method] ?? method} | ${sgn(dp, 2)} | ${
        dp.filter((v) => v > 0).length
      }/${dp.length} | ${sgn(ds, 4)} | ${
        ds.filter((v) => v > 0).length
      }/${ds.length} | ${pairs.length} |`,
    );
  }
  return out;
}

/** Lesion recovery (mean in lesion / true mean) and CRC per lesion class and method. */
export function lesionTable(sub: Row[], labels: Record<string, string>): string[] {
  const kinds = [...new Set(sub.flatMap((r) => (r.lesions ?? []).map((l) => l.kind)))].sort();
  if (kinds.length === 0) return [];
  const out = [
    "",
    `| lesions: recovery (CRC) | ${kinds.join(" | ")} |`,
    `|---|${kinds.map(() => "---").join("|")}|`,
  ];
  for (const method of [...new Set(sub.map((r) => r.method))]) {
    const ls = sub.filter((r) => r.method === method).flatMap((r) => r.lesions ?? []);
    const cells = kinds.map((k) => {
      const of = ls.filter((l) => l.kind === k);
      if (of.length === 0) return "–";
      return `${mean(of.map((l) => l.recovery)).toFixed(2)} (${
        mean(of.map((l) => l.crc)).toFixed(2)
      }), n ${of.length}`;
    });
    out.push(`| ${labels[method] ?? method} | ${cells.join(" | ")} |`);
  }
  return out;
}

/**
 * Rows run over several seeds (`--samples`): per lesion the recovery of chain 0 (the row's image)
 * and of the mean over the chains, and the chains' voxel-wise std in the lesion, in its background
 * shell and over the head (median), so one can see whether the spread flags a lesion.
 */
export function spreadTable(sub: Row[], labels: Record<string, string>): string[] {
  const rs = sub.filter((r) => typeof r.sdMedian === "number");
  if (rs.length === 0) return [];
  const out = [
    "",
    "| seeds: method, condition | lesion | recovery (chain 0 / mean) | std in lesion | std in shell | std, head median |",
    "|---|---|---|---|---|---|",
  ];
  for (const r of rs) {
    for (const l of r.lesions ?? []) {
      if (l.sd === undefined) continue;
      out.push(
        `| ${
          labels[r.method] ?? r.method
        } ×${r.samples}, ${r.subject} c${r.centre} r${r.realisation} | ${l.kind} ${
          l.radiusMm.toFixed(1)
        } mm | ${l.recovery.toFixed(3)} / ${l.meanRecovery!.toFixed(3)} | ${
          l.sd.toPrecision(3)
        } | ${l.sdBackground!.toPrecision(3)} | ${(r.sdMedian as number).toPrecision(3)} |`,
      );
    }
  }
  return out;
}
