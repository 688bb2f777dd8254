#!/usr/bin/env bash
# petrel on an NVIDIA GPU machine (e.g. an H200), in one go and within 10 minutes:
#   1. Deno 2.9.6, 2. the npm packages: from the offline pack .gpu/ when it is there (built by
#      scripts/gpu_pack.sh on a machine with network; the device machine has none), else from the
#      npm registry (npx, deno install),
#   3. Deno's WebGPU adapter (expected: the NVIDIA GPU through Vulkan; the Vulkan/EGL loaders come
#      from .gpu/debs/ or apt when the machine lacks them),
#   4. the projector benchmark (2d, stack3, 3d; Joseph and the ring projector side by side),
#   5. the score prior on onnxruntime-web's WebGPU provider checked against wasm (the 3×3 Conv
#      with 6 input channels that gave O(1) errors on llvmpipe),
#   6. DDIP-HQS on one 128²×3 stack at the reference settings (200 steps),
#   7. DDIP-HQS on an 87-slice direct-plane volume at the CPU preset (25 steps, stacks 3 apart).
# Every step has a time cap and the whole run a budget (GPU_CHECK_BUDGET_S, default 570 s); a step
# that runs out of time is cut and recorded as such, and the next one still runs.
#
# Usage: scripts/gpu_check.sh [OUT_DIR] [--short|--full]
#   OUT_DIR: where the figures go (default $OUT, else out/gpu_check). Four files, so that all come
#   back from the device tool (at most 8 files): summary.md, summary.json, gpu_check.log and
#   steps.tar.gz (each step's <step>.json / <step>.log, nvidia.txt, summary.tsv; refreshed after
#   every step, so a cut run still returns what it took).
#   On a fallback adapter (Mesa llvmpipe, no GPU) it runs a short version by itself (2d and
#   stack3, the test-fixture prior, 2 DDIP steps, a 5-slice volume of 1 step) so that the script
#   can be checked on the CPU machines; --short forces it, --full forbids it.
#   On an NVIDIA machine where WebGPU finds no GPU it stops after the adapter steps (exit 3) so
#   that a lease is not spent on CPU figures; --short or --full runs the benchmarks anyway.
#   GPU_CHECK_PACK=0 ignores .gpu/ (network path); =1 requires it. GPU_CHECK_DEB_ROOT unpacks the
#   pack's .debs elsewhere than / (a rehearsal on a shared machine; no ldconfig then).
#   GPU_CHECK_CAP_SCALE=n multiplies every step's cap (a rehearsal on a loaded CPU machine; raise
#   GPU_CHECK_BUDGET_S with it).
#   docs/gpu.md: the device tool call that runs this.
set -uo pipefail
cd "$(dirname "$0")/.."

OUT_DIR=""
MODE=auto
for a in "$@"; do
  case "$a" in
    --short) MODE=short ;;
    --full) MODE=full ;;
    -h | --help)
      sed -n '2,32p' "$0"
      exit 0
      ;;
    -*)
      echo "gpu_check.sh: unknown option $a (use --short, --full or an output folder)" >&2
      exit 2
      ;;
    *) OUT_DIR="$a" ;;
  esac
done
OUT_DIR="${OUT_DIR:-${OUT:-out/gpu_check}}"
mkdir -p "$OUT_DIR" || exit 2
OUT_DIR="$(cd "$OUT_DIR" && pwd)"
BUDGET="${GPU_CHECK_BUDGET_S:-570}"
CAP_SCALE="${GPU_CHECK_CAP_SCALE:-1}" # step caps × this (rehearsals on a loaded CPU machine)
[[ $CAP_SCALE =~ ^[1-9][0-9]*$ ]] || {
  echo "gpu_check.sh: GPU_CHECK_CAP_SCALE must be a positive integer, got $CAP_SCALE" >&2
  exit 2
}
START=$(date +%s)
# per-step files live in WORK and travel as one bundle, steps.tar.gz
WORK="$(mktemp -d /tmp/gpu_check.XXXXXX)" || exit 2
trap 'rm -rf "$WORK"' EXIT
trap 'exit 1' INT TERM
SUMMARY="$WORK/summary.tsv"
printf 'step\tstatus\tseconds\n' >"$SUMMARY"
: >"$OUT_DIR/gpu_check.log"

say() { echo "[gpu_check $(date -u +%H:%M:%S)] $*" | tee -a "$OUT_DIR/gpu_check.log" >&2; }
left() { echo $((BUDGET - ($(date +%s) - START))); }
bundle() { tar -C "$WORK" -czf "$OUT_DIR/steps.tar.gz" --exclude=./deno_dir . 2>/dev/null; }

# step NAME CAP_SECONDS COMMAND...: runs COMMAND with stdout to NAME.json, stderr to NAME.log,
# for at most min(CAP, time left); records ok / failed (rc) / timeout / skipped.
step() {
  local name="$1" cap="$2"
  shift 2
  local t
  cap=$((cap * CAP_SCALE))
  t=$(left)
  t=$((t - 5))
  ((t > cap)) && t=$cap
  if ((t < 15)); then
    say "$name: skipped (out of time)"
    printf '%s\tskipped\t0\n' "$name" >>"$SUMMARY"
    bundle
    return 0
  fi
  local cmd="$*"
  cmd="${cmd//$'\n'/ }"
  say "$name: start (cap ${t} s): ${cmd:0:160}"
  local s0 rc status
  s0=$(date +%s)
  timeout -k 10 "$t" "$@" >"$WORK/$name.json" 2>"$WORK/$name.log"
  rc=$?
  case $rc in
    0) status=ok ;;
    124 | 137) status=timeout ;;
    *) status="failed($rc)" ;;
  esac
  local dt=$(($(date +%s) - s0))
  say "$name: $status after ${dt} s"
  tail -n 3 "$WORK/$name.log" | sed 's/^/    /' | tee -a "$OUT_DIR/gpu_check.log" >&2
  printf '%s\t%s\t%s\n' "$name" "$status" "$dt" >>"$SUMMARY"
  bundle
  return 0
}

# xz -d, or Python's lzma where xz is missing
unxz_to() { # unxz_to FILE.xz DEST
  if command -v xz >/dev/null 2>&1; then
    xz -dc "$1" >"$2"
  else
    python3 -c 'import lzma, shutil, sys
with lzma.open(sys.argv[1]) as f, open(sys.argv[2], "wb") as o: shutil.copyfileobj(f, o, 1 << 20)' \
      "$1" "$2"
  fi
}

# 1.–2. Deno and the npm packages: from the offline pack .gpu/ (scripts/gpu_pack.sh), else npm
PACK=.gpu
USE_PACK="${GPU_CHECK_PACK:-auto}"
if [[ $USE_PACK == auto ]]; then
  USE_PACK=0
  [[ -s $PACK/deno.xz && -s $PACK/node_modules.tar.xz ]] && USE_PACK=1
elif [[ $USE_PACK == 1 && ! (-s $PACK/deno.xz && -s $PACK/node_modules.tar.xz) ]]; then
  say "GPU_CHECK_PACK=1 but $PACK/deno.xz or $PACK/node_modules.tar.xz is missing: run scripts/gpu_pack.sh"
  exit 1
fi
export DENO_NO_UPDATE_CHECK=1
DENO=""
DENO_FLAGS=()
if ((USE_PACK)); then
  # the pack must hold the versions deno.json imports (gpu_pack.sh writes them to manifest.txt)
  v() { sed -n "s|.*\"npm:$1@\([^\"/]*\)\".*|\1|p" deno.json | head -n 1; }
  want_pkgs="packages onnxruntime-web@$(v onnxruntime-web) zod@$(v zod) commander@$(v commander)"
  have_pkgs="$(grep '^packages ' "$PACK/manifest.txt" 2>/dev/null)"
  if [[ $have_pkgs != "$want_pkgs" ]]; then
    say "$PACK/manifest.txt has '${have_pkgs:-no packages line}' but deno.json wants '$want_pkgs':" \
      "rebuild the pack with scripts/gpu_pack.sh"
    exit 1
  fi
  # Deno from the pack, unpacked once to /tmp (kept while its checksum matches)
  want="$(cat "$PACK/deno.sha256" 2>/dev/null)"
  DENO=/tmp/petrel_gpu_deno/deno
  if [[ -z $want || ! -x $DENO || "$(sha256sum "$DENO" | cut -d' ' -f1)" != "$want" ]]; then
    mkdir -p /tmp/petrel_gpu_deno
    if unxz_to "$PACK/deno.xz" "$DENO.part" && chmod +x "$DENO.part" && mv "$DENO.part" "$DENO"; then
      say "deno: unpacked $PACK/deno.xz to $DENO"
    else
      say "could not unpack $PACK/deno.xz"
      exit 1
    fi
  fi
  # node_modules from the pack unless there is one (a full `deno install` serves as well)
  if [[ ! -d node_modules/.deno ]]; then
    rm -rf node_modules.gpu_part && mkdir node_modules.gpu_part &&
      unxz_to "$PACK/node_modules.tar.xz" "$WORK/nm.tar" &&
      tar -C node_modules.gpu_part -xf "$WORK/nm.tar" &&
      rm -rf node_modules && mv node_modules.gpu_part/node_modules node_modules &&
      rmdir node_modules.gpu_part && rm -f "$WORK/nm.tar" ||
      {
        say "could not unpack $PACK/node_modules.tar.xz"
        exit 1
      }
    say "node_modules: unpacked from $PACK/node_modules.tar.xz (pruned: no onnxruntime-node)"
  else
    say "node_modules: using the one already there"
  fi
  # manual: Deno takes node_modules as it is and installs nothing (the lockfile names packages
  # the pack leaves out); cached-only: it never reaches for the network; a private DENO_DIR shows
  # that nothing comes from an earlier cache
  DENO_FLAGS=(--node-modules-dir=manual --cached-only)
  export DENO_DIR="$WORK/deno_dir"
elif command -v deno >/dev/null 2>&1 && deno --version 2>/dev/null | grep -q '^deno 2\.9\.6'; then
  DENO="$(command -v deno)"
else
  if ! command -v npx >/dev/null 2>&1; then
    say "no npx: installing nodejs and npm with apt"
    (apt-get update -qq && apt-get install -y -qq nodejs npm) >>"$OUT_DIR/gpu_check.log" 2>&1
  fi
  step deno 120 npx -y deno@2.9.6 --version
  cache="$(npm config get cache 2>/dev/null || echo "$HOME/.npm")"
  DENO="$(find "$cache/_npx" -path '*@deno/linux-x64-glibc/deno' -type f 2>/dev/null | head -n 1)"
  [[ -x "$DENO" ]] || DENO=""
fi
if [[ -z "$DENO" ]] || ! "$DENO" --version >/dev/null 2>&1; then
  say "no Deno 2.9.6 binary found (run scripts/gpu_pack.sh where the network is, or see deno.log)"
  bundle
  exit 1
fi
say "deno: $DENO ($("$DENO" --version | head -n 1)); offline pack: $USE_PACK"
((USE_PACK)) || step install 180 "$DENO" install

# 3. the adapter. wgpu reaches NVIDIA GPUs through Vulkan: it needs the Vulkan loader. Only on a
# machine with an NVIDIA GPU: elsewhere (the CPU machines) adding Vulkan can bring Mesa's
# lavapipe, which wgpu then prefers to the GL llvmpipe petrel is measured on.
HAS_NVIDIA=0
if [[ -e /dev/nvidia0 ]] || command -v nvidia-smi >/dev/null 2>&1; then HAS_NVIDIA=1; fi
if ((HAS_NVIDIA)) && ! ldconfig -p 2>/dev/null | grep -q 'libvulkan\.so\.1'; then
  if ((USE_PACK)) && compgen -G "$PACK/debs/*.deb" >/dev/null; then
    # the device tool's recipe: the loaders' .debs unpacked onto / (libvulkan1, libegl1, ...)
    # (GPU_CHECK_DEB_ROOT: another folder than /, for rehearsing this on a shared machine)
    root="${GPU_CHECK_DEB_ROOT:-/}"
    say "NVIDIA GPU without libvulkan.so.1: unpacking $PACK/debs/*.deb onto $root"
    for f in "$PACK"/debs/*.deb; do dpkg -x "$f" "$root" || say "dpkg -x $f failed"; done
    [[ $root == / ]] && ldconfig
  else
    say "NVIDIA GPU without libvulkan.so.1: installing libvulkan1 with apt"
    (apt-get update -qq && apt-get install -y -qq --no-install-recommends libvulkan1) \
      >>"$OUT_DIR/gpu_check.log" 2>&1 || say "apt-get install libvulkan1 failed (not root?)"
  fi
fi
# Containers given the GPU for compute only lack NVIDIA's Vulkan ICD / EGL vendor manifests in the
# system folders: use the driver's own (/usr/local/nvidia/share), else write an ICD manifest for
# the driver's library (no system file is written).
if ((HAS_NVIDIA)) && ! ls /usr/share/vulkan/icd.d/nvidia* /etc/vulkan/icd.d/nvidia* >/dev/null 2>&1; then
  icd=/usr/local/nvidia/share/vulkan/icd.d/nvidia_icd.json
  if [[ -f $icd ]]; then
    export VK_DRIVER_FILES="$icd" VK_ICD_FILENAMES="$icd"
    say "no NVIDIA Vulkan ICD manifest in the system folders: using $icd"
  else
    for lib in libGLX_nvidia.so.0 libEGL_nvidia.so.0; do
      if ldconfig -p 2>/dev/null | grep -q "$lib"; then
        printf '{"file_format_version":"1.0.0","ICD":{"library_path":"%s","api_version":"1.3"}}\n' \
          "$lib" >"$WORK/nvidia_icd.json"
        export VK_DRIVER_FILES="$WORK/nvidia_icd.json" VK_ICD_FILENAMES="$WORK/nvidia_icd.json"
        say "no NVIDIA Vulkan ICD manifest: using a written one for $lib"
        break
      fi
    done
  fi
fi
egl=/usr/local/nvidia/share/glvnd/egl_vendor.d/10_nvidia.json
if ((HAS_NVIDIA)) && [[ -f $egl ]] && ! ls /usr/share/glvnd/egl_vendor.d/*nvidia* >/dev/null 2>&1; then
  export __EGL_VENDOR_LIBRARY_FILENAMES="$egl"
  say "no NVIDIA EGL vendor file in the system folders: using $egl"
fi
{
  command -v nvidia-smi >/dev/null 2>&1 &&
    nvidia-smi --query-gpu=name,driver_version,memory.total --format=csv
  ldconfig -p 2>/dev/null | grep -E 'libvulkan|libEGL|nvidia' | head -n 20
  ls /usr/share/vulkan/icd.d /etc/vulkan/icd.d /usr/local/nvidia/share/vulkan/icd.d 2>/dev/null
  env | grep -E '^(VK_|__EGL|NVIDIA_)' || true
} >"$WORK/nvidia.txt" 2>&1
ADAPTER_JS='
const a = await navigator.gpu?.requestAdapter({ powerPreference: "high-performance" });
if (!a) { console.log(JSON.stringify({ adapter: null })); Deno.exit(3); }
const i = a.info;
console.log(JSON.stringify({
  backend: Deno.env.get("DENO_WEBGPU_BACKEND") ?? "default",
  vendor: i.vendor, architecture: i.architecture, device: i.device, description: i.description,
  isFallbackAdapter: Boolean(i.isFallbackAdapter),
  limits: { maxStorageBufferBindingSize: a.limits.maxStorageBufferBindingSize,
    maxBufferSize: a.limits.maxBufferSize,
    maxComputeWorkgroupsPerDimension: a.limits.maxComputeWorkgroupsPerDimension },
  features: [...a.features],
}));'
step adapter 45 "$DENO" eval "${DENO_FLAGS[@]}" "$ADAPTER_JS"
# the same with wgpu restricted to Vulkan: on a GPU machine this names the NVIDIA GPU too
DENO_WEBGPU_BACKEND=vulkan step adapter_vulkan 45 "$DENO" eval "${DENO_FLAGS[@]}" "$ADAPTER_JS"
FALLBACK=1
if grep -q '"isFallbackAdapter":false' "$WORK/adapter.json" 2>/dev/null; then
  FALLBACK=0
elif grep -q '"isFallbackAdapter":false' "$WORK/adapter_vulkan.json" 2>/dev/null; then
  # wgpu's default pick was a fallback (e.g. Mesa's GL) but Vulkan reaches the GPU: keep Vulkan
  FALLBACK=0
  export DENO_WEBGPU_BACKEND=vulkan
  say "the default adapter is a fallback, the Vulkan one is not: DENO_WEBGPU_BACKEND=vulkan from here"
fi
STOP=0
if ((HAS_NVIDIA && FALLBACK)); then
  say "an NVIDIA GPU is present but WebGPU did not find it: see nvidia.txt and adapter*.log in" \
    "steps.tar.gz (Vulkan loader and NVIDIA ICD; containers need NVIDIA_DRIVER_CAPABILITIES with graphics)"
  # CPU figures on a lent GPU machine are worth nothing: stop, so that the lease is left for a fix
  if [[ $MODE == auto ]]; then
    STOP=1
    MODE=stopped
    say "stopping before the benchmarks (--short or --full runs them anyway)"
  fi
fi
if [[ $MODE == auto ]]; then
  if ((FALLBACK)); then MODE=short; else MODE=full; fi
fi
if [[ $MODE == full ]] && ((FALLBACK)); then
  say "warning: --full on a fallback adapter (no GPU): the figures are CPU figures"
fi
((STOP)) || say "mode: $MODE (fallback adapter: $FALLBACK)"

if ((STOP == 0)); then
  RUN=("$DENO" run -A "${DENO_FLAGS[@]}")
  # 4. projectors
  if [[ $MODE == full ]]; then
    step projector 120 "${RUN[@]}" bench/projector_bench.ts --json --no-reference \
      --cases 2d,stack3,3d
  else
    step projector 120 "${RUN[@]}" bench/projector_bench.ts --json --no-reference \
      --cases 2d,stack3 --repeats 3
  fi
  # 5. the prior on WebGPU against wasm
  if [[ $MODE == full ]]; then
    step prior_webgpu 150 "${RUN[@]}" bench/prior_webgpu_check.ts --json --reps 3
  else
    # (creating ORT's WebGPU session on llvmpipe alone took 2–3 min under load)
    step prior_webgpu 240 "${RUN[@]}" bench/prior_webgpu_check.ts --json --quick \
      --model tests/fixtures/prior
  fi
  # 6.–7. DDIP-HQS (prior provider auto: WebGPU on a GPU when it passes the cross-check, else wasm;
  # never onnxruntime-node, which the offline pack leaves out)
  if [[ $MODE == full ]]; then
    step ddip_stack_reference 170 "${RUN[@]}" bench/ddip_run.ts --json --preset reference \
      --provider auto
    step ddip_volume_preset 170 "${RUN[@]}" bench/ddip_run.ts --json --preset cpu \
      --slices 87 --stride 3 --provider auto
  else
    step ddip_stack_reference 150 "${RUN[@]}" bench/ddip_run.ts --json --preset reference \
      --steps 2 --provider wasm
    step ddip_volume_preset 150 "${RUN[@]}" bench/ddip_run.ts --json --preset cpu \
      --slices 5 --stride 3 --steps 1 --provider wasm
  fi
fi

# summary.md / summary.json from the step outputs
SUMMARY_JS='
const [dir, outDir, mode, pack] = Deno.args;
const read = (n) => { try { return Deno.readTextFileSync(`${dir}/${n}`); } catch { return ""; } };
const json = (n) => { const t = read(`${n}.json`).trim(); if (!t) return null;
  try { return JSON.parse(t); } catch { return t.split("\n").filter(Boolean).map((l) => { try { return JSON.parse(l); } catch { return l; } }); } };
const steps = read("summary.tsv").trim().split("\n").slice(1).map((l) => { const [step, status, s] = l.split("\t"); return { step, status, seconds: +s }; });
const out = { mode, offlinePack: pack === "1", steps, adapter: json("adapter"), adapterVulkan: json("adapter_vulkan"), nvidia: read("nvidia.txt").trim(),
  projector: json("projector"), priorWebgpu: json("prior_webgpu"), ddipStackReference: json("ddip_stack_reference"), ddipVolumePreset: json("ddip_volume_preset") };
Deno.writeTextFileSync(`${outDir}/summary.json`, JSON.stringify(out, null, 1));
const L = [`# petrel gpu_check (${mode} mode), ${new Date().toISOString()}`, "", "| step | status | s |", "| --- | --- | --- |",
  ...steps.map((s) => `| ${s.step} | ${s.status} | ${s.seconds} |`), ""];
const ad = out.adapter;
L.push(`Adapter: ${ad?.description ?? "none"} (${ad?.vendor ?? "?"}, fallback ${ad?.isFallbackAdapter}); with DENO_WEBGPU_BACKEND=vulkan: ${out.adapterVulkan?.description ?? "none"}`, "");
if (Array.isArray(out.projector)) { L.push("| case | projector | fwd ms | back ms | pair ms | pair cpu/joseph |", "| --- | --- | --- | --- | --- | --- |");
  for (const r of out.projector) if (r && typeof r === "object") L.push(`| ${r.case} | ${r.projector} | ${r.fwd_ms} | ${r.back_ms} | ${r.pair_ms} | ${r.pair_cpu_vs_joseph} |`); L.push(""); }
const p = out.priorWebgpu;
if (p && !Array.isArray(p)) { L.push(`Prior cross-check: ${p.crossCheck?.providerAfterCheck}: ${p.crossCheck?.note}`);
  for (const c of p.full ?? []) L.push(`- ${c.graph}: WebGPU vs wasm max |Δ| / max = ${c.relative.toExponential(2)}; wasm ${c.wasmMs.toFixed(0)} ms, WebGPU ${c.webgpuMs.toFixed(0)} ms`); L.push(""); }
for (const [k, v] of [["DDIP one stack, reference", out.ddipStackReference], ["DDIP volume, preset", out.ddipVolumePreset]])
  if (v && !Array.isArray(v)) L.push(`${k}: ${v.wallSeconds} s (${v.steps} steps, ${v.slices} slices, prior on ${v.provider}; finite ${v.finite})`);
Deno.writeTextFileSync(`${outDir}/summary.md`, L.join("\n") + "\n");
console.log(L.join("\n"));'
"$DENO" eval "${DENO_FLAGS[@]}" "$SUMMARY_JS" "$WORK" "$OUT_DIR" "$MODE" "$USE_PACK" || say "summary failed"
bundle
((STOP)) && exit 3
say "done in $(($(date +%s) - START)) s; figures in $OUT_DIR (summary.md, summary.json, steps.tar.gz)"
