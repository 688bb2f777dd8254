#!/usr/bin/env bash
# Train the next petrel prior on CUDA when present (else the CPU), export denoiser.onnx + vjp.onnx
# with the existing export path and check them against PyTorch, in one command:
#
#   scripts/prior/train_gpu.sh            # the real run (see docs/model_card.md, "Next prior")
#   scripts/prior/train_gpu.sh --smoke    # a tiny run of every step (CPU, ~1-2 min), to check it
#
# Environment (defaults in brackets):
#   DATA      stacks: a pack_dataset.py .npz or a petrel-stacks-v1 directory with fractions.npy
#             [out/datasets/prior_v2.npz, else out/datasets/prior_v2]
#   RUN_DIR   checkpoint, loss.csv, train.log; resumes from RUN_DIR/ckpt.pt [out/prior_v2]
#   MINUTES   wall-clock cap of the training [7]
#   STEPS     when set: cosine lr schedule over STEPS steps and stop there (deterministic);
#             unset: constant lr, decayed to 10 % over the last third of MINUTES (wall clock)
#   BASE [32] MULTS ["1 2 2"] CROP [128] BATCH [32] LR [5e-4] AUGMENT [all] WORKERS [nproc - 2]
#   PY        a python3 with torch (1.13 or 2.x), numpy [python3; /usr/bin/python3 here]
#   RESULTS   where ckpt.pt, loss.csv, train.log and the exported model are copied at the end
#             [$OUT when set, e.g. on the device machine, else none]
#   EXTRA     more train.py arguments
# The export needs the onnx package; its ONNX-vs-PyTorch check needs Deno with the npm packages
# (deno install). Where either is missing the checkpoint is kept and the script prints the export
# command to run on a machine that has them (e.g. back here: /usr/bin/python3, torch 1.13).
set -euo pipefail
cd "$(dirname "$0")/../.."

SMOKE=0
for a in "$@"; do
  case "$a" in
    --smoke) SMOKE=1 ;;
    -h | --help)
      sed -n '2,24p' "$0"
      exit 0
      ;;
    *)
      echo "train_gpu.sh: unknown argument $a (only --smoke)" >&2
      exit 2
      ;;
  esac
done

PY="${PY:-python3}"
if ! "$PY" -c 'import torch, numpy' 2>/dev/null; then
  if [[ -x /usr/bin/python3 ]] && /usr/bin/python3 -c 'import torch, numpy' 2>/dev/null; then
    PY=/usr/bin/python3
  else
    echo "train_gpu.sh: no python3 with torch and numpy (set PY)" >&2
    exit 2
  fi
fi
"$PY" -c 'import torch; print("torch", torch.__version__, "cuda", torch.cuda.is_available(),
  torch.cuda.get_device_name(0) if torch.cuda.is_available() else "")'

NPROC=$(nproc 2>/dev/null || echo 2)
WORKERS="${WORKERS:-$((NPROC > 3 ? NPROC - 2 : 0))}"
if ((SMOKE)); then
  RUN_DIR="${RUN_DIR:-out/prior_smoke}"
  DATA="${DATA:-$RUN_DIR/data}"
  rm -rf "$RUN_DIR"
  mkdir -p "$RUN_DIR"
  # a tiny stacks set (disc phantoms, with fractions) from the tests' generator
  (cd scripts/prior && "$PY" -c "import test_train; test_train.write_stacks('../../$DATA', n=6, h=32)")
  MODEL=(--base 8 --mults 1 2)
  TRAIN=(--crop 32 --batch 4 --max-steps 4 --warmup 2 --schedule cosine --total-steps 4
    --log-every 1 --deterministic)
  VJP=(--vjp-size 1 32 32)
  MINUTES="${MINUTES:-5}"
else
  if [[ -z "${DATA:-}" ]]; then
    DATA=out/datasets/prior_v2.npz
    [[ -f "$DATA" ]] || DATA=out/datasets/prior_v2
  fi
  RUN_DIR="${RUN_DIR:-out/prior_v2}"
  MINUTES="${MINUTES:-7}"
  read -r -a MULTS_A <<<"${MULTS:-1 2 2}"
  MODEL=(--base "${BASE:-32}" --mults "${MULTS_A[@]}")
  TRAIN=(--crop "${CROP:-128}" --batch "${BATCH:-32}" --lr "${LR:-5e-4}" --ckpt-every 500
    --log-every 50)
  if [[ -n "${STEPS:-}" ]]; then
    TRAIN+=(--schedule cosine --total-steps "$STEPS" --max-steps "$STEPS")
  else
    TRAIN+=(--decay-minutes "$(awk "BEGIN {print $MINUTES / 3}")")
  fi
  VJP=(--vjp-size 1 128 128)
fi
if [[ ! -e "$DATA" ]]; then
  echo "train_gpu.sh: no data at $DATA. Build it (docs/model_card.md, Next prior):" >&2
  echo "  deno run -A scripts/build_dataset.ts --out out/datasets/prior_v2 --stride 1 --fractions \\" >&2
  echo "    --subjects 05,06,18,38,42,43,44,45,46,47,48" >&2
  echo "  /usr/bin/python3 scripts/prior/pack_dataset.py out/datasets/prior_v2 out/datasets/prior_v2.npz" >&2
  exit 2
fi
mkdir -p "$RUN_DIR"
DEADLINE=$(($(date +%s) + $(awk "BEGIN {printf \"%d\", $MINUTES * 60}")))

echo "== train ($DATA -> $RUN_DIR, ${MINUTES} min cap, workers $WORKERS)"
# shellcheck disable=SC2086
"$PY" scripts/prior/train.py --data "$DATA" --out "$RUN_DIR" --device auto \
  --augment "${AUGMENT:-all}" --workers "$WORKERS" --threads "$((NPROC > 3 ? 2 : 1))" \
  --deadline "$DEADLINE" "${MODEL[@]}" "${TRAIN[@]}" ${EXTRA:-} 2>&1 | tee -a "$RUN_DIR/train.log"

echo "== export + check"
MODEL_DIR="$RUN_DIR/model"
EXPORT=("$PY" scripts/prior/export.py --ckpt "$RUN_DIR/ckpt.pt" --out "$MODEL_DIR"
  --check-dir "$RUN_DIR/check" "${VJP[@]}")
EXPORT_STATUS="not run"
if ! "$PY" -c 'import onnx' 2>/dev/null; then
  EXPORT_STATUS="skipped: $PY has no onnx package"
else
  CHECK=()
  if ! { command -v deno >/dev/null 2>&1 || command -v npx >/dev/null 2>&1; } ||
    [[ ! -d node_modules/onnxruntime-web ]]; then
    CHECK=(--no-deno-check)
    EXPORT_STATUS="exported; ONNX check skipped (no Deno or no node_modules/onnxruntime-web)"
  fi
  if "${EXPORT[@]}" "${CHECK[@]}" 2>&1 | tee "$RUN_DIR/export.log"; then
    [[ ${#CHECK[@]} -gt 0 ]] || EXPORT_STATUS="exported and checked against PyTorch"
  else
    EXPORT_STATUS="FAILED (see $RUN_DIR/export.log)"
  fi
fi
echo "== export: $EXPORT_STATUS"
if [[ "$EXPORT_STATUS" != "exported and checked against PyTorch" ]]; then
  echo "   to export and check elsewhere: /usr/bin/python3 ${EXPORT[*]:1}"
fi

RESULTS="${RESULTS:-${OUT:-}}"
if [[ -n "$RESULTS" ]]; then
  mkdir -p "$RESULTS"
  cp "$RUN_DIR/ckpt.pt" "$RUN_DIR/loss.csv" "$RUN_DIR/train.log" "$RESULTS/"
  [[ -d "$MODEL_DIR" ]] && cp -r "$MODEL_DIR" "$RESULTS/model"
  [[ -f "$RUN_DIR/export.log" ]] && cp "$RUN_DIR/export.log" "$RESULTS/"
  echo "== copied the results to $RESULTS"
fi
[[ "$EXPORT_STATUS" != FAILED* ]]
