#!/usr/bin/env bash
# Builds .gpu/ (git-ignored): what scripts/gpu_check.sh needs on a machine with no network (the
# device machine: it receives the working tree plus the `carry` paths, 64 MiB in all). Run it
# HERE, with the npm registry and Debian apt reachable, in the checkout the device tool sends:
#   .gpu/deno.xz              Deno 2.9.6 (xz; gpu_check.sh unpacks it to /tmp)
#   .gpu/node_modules.tar.xz  a pruned node_modules: zod, commander, onnxruntime-common and the
#                             onnxruntime-web files the wasm and WebGPU providers load (two
#                             entry modules, their glue and two .wasm binaries). No onnxruntime-node (CPU
#                             only, 288 MB): the check's steps run the prior on webgpu or wasm.
#   .gpu/debs/*.deb           the Vulkan / EGL loaders (libvulkan1, libegl1, libglvnd0, ...)
#   .gpu/manifest.txt         versions, sizes and checksums
# Deno runs there with --node-modules-dir=manual --cached-only, so the lockfile's other packages
# (onnxruntime-node, pg, ...) are never fetched. Prints the sizes and fails when the working tree
# plus the pack exceed GPU_PACK_LIMIT_MIB (default 60; the device tool's limit is 64 MiB).
#
# Usage: scripts/gpu_pack.sh [--force]   (--force: recompress Deno and node_modules even if
#   unchanged; each is recompressed only when its content changed)
set -euo pipefail
cd "$(dirname "$0")/.."
ROOT="$(pwd)"
PACK="$ROOT/.gpu"
LIMIT_MIB="${GPU_PACK_LIMIT_MIB:-60}"
DENO_VERSION=2.9.6
FORCE=0
for a in "$@"; do
  case "$a" in
    --force) FORCE=1 ;;
    -h | --help)
      sed -n '2,18p' "$0"
      exit 0
      ;;
    *)
      echo "gpu_pack.sh: unknown argument $a" >&2
      exit 2
      ;;
  esac
done
say() { echo "[gpu_pack] $*" >&2; }
die() {
  echo "gpu_pack.sh: $*" >&2
  exit 1
}
git check-ignore -q .gpu/x || die ".gpu/ is not git-ignored (add it to .gitignore)"
mkdir -p "$PACK"

# 1. Deno 2.9.6 (the npm package @deno/linux-x64-glibc ships the binary)
DENO_BIN=""
if command -v deno >/dev/null 2>&1 && deno --version 2>/dev/null | grep -q "^deno $DENO_VERSION "; then
  DENO_BIN="$(readlink -f "$(command -v deno)")"
else
  npx -y "deno@$DENO_VERSION" --version >/dev/null || die "npx -y deno@$DENO_VERSION failed"
  DENO_BIN="$(find "$(npm config get cache)/_npx" -path '*@deno/linux-x64-glibc/deno' -type f \
    2>/dev/null | head -n 1)"
fi
[[ -x "$DENO_BIN" ]] || die "no Deno $DENO_VERSION binary found"
"$DENO_BIN" --version | grep -q "^deno $DENO_VERSION " || die "$DENO_BIN is not Deno $DENO_VERSION"
[[ "$(uname -m)" == x86_64 ]] || die "the device machine is x86-64; this Deno binary is $(uname -m)"
sum="$(sha256sum "$DENO_BIN" | cut -d' ' -f1)"
if ((FORCE)) || [[ ! -s "$PACK/deno.xz" ]] || [[ "$(cat "$PACK/deno.sha256" 2>/dev/null)" != "$sum" ]]; then
  say "compressing $DENO_BIN (xz -9e with the x86 filter, a few minutes)"
  xz --x86 --lzma2=preset=9e -T1 -c "$DENO_BIN" >"$PACK/deno.xz.part"
  mv "$PACK/deno.xz.part" "$PACK/deno.xz"
  echo "$sum" >"$PACK/deno.sha256"
else
  say "deno.xz is up to date"
fi

# 2. the pruned node_modules (Deno's layout: node_modules/.deno/<pkg>@<version>/node_modules/<pkg>
# plus a top-level link per direct dependency)
[[ -d node_modules/.deno ]] || "$DENO_BIN" install >/dev/null || die "deno install failed"
stage="$(mktemp -d)"
trap 'rm -rf "$stage"' EXIT
trap 'exit 1' INT TERM
nm="$stage/node_modules"
mkdir -p "$nm/.deno"
version_of() { # the version deno.json imports for a package (npm:name@version)
  sed -n "s|.*\"npm:$1@\([^\"/]*\)\".*|\1|p" deno.json | head -n 1
}
ORT_VERSION="$(version_of onnxruntime-web)"
ZOD_VERSION="$(version_of zod)"
CMD_VERSION="$(version_of commander)"
[[ -n "$ORT_VERSION" && -n "$ZOD_VERSION" && -n "$CMD_VERSION" ]] ||
  die "deno.json does not import onnxruntime-web, zod and commander as npm:name@version"
whole() { # whole package, top-level link too when $3 is "top"
  local src="node_modules/.deno/$1@$2"
  [[ -d "$src" ]] || die "$src is missing: run deno install"
  cp -a "$src" "$nm/.deno/"
  [[ "${3:-}" == top ]] && ln -s ".deno/$1@$2/node_modules/$1" "$nm/$1"
  return 0
}
whole zod "$ZOD_VERSION" top
whole commander "$CMD_VERSION" top
whole onnxruntime-common "$ORT_VERSION"
ort="node_modules/.deno/onnxruntime-web@$ORT_VERSION/node_modules/onnxruntime-web"
[[ -d "$ort" ]] || die "$ort is missing: run deno install"
ort_dst="$nm/.deno/onnxruntime-web@$ORT_VERSION/node_modules"
mkdir -p "$ort_dst/onnxruntime-web/dist"
ln -s "../../onnxruntime-common@$ORT_VERSION/node_modules/onnxruntime-common" \
  "$ort_dst/onnxruntime-common"
ln -s ".deno/onnxruntime-web@$ORT_VERSION/node_modules/onnxruntime-web" "$nm/onnxruntime-web"
cp -a "$ort/package.json" "$ort_dst/onnxruntime-web/"
# What Deno loads (it resolves with the "node" condition): "onnxruntime-web" -> ort.node.min.mjs,
# which imports onnxruntime-common and ort-wasm-simd-threaded.mjs (wasm provider);
# "onnxruntime-web/webgpu" -> ort.webgpu.bundle.min.mjs (it embeds the .asyncify.mjs glue); the
# two .wasm binaries come in as bytes imports (core/diffusion/ort.ts). The .asyncify.mjs is for
# ORT's own fetch of the glue where the bundle is not used.
for f in ort.node.min.mjs ort.webgpu.bundle.min.mjs ort-wasm-simd-threaded.wasm \
  ort-wasm-simd-threaded.asyncify.wasm ort-wasm-simd-threaded.mjs \
  ort-wasm-simd-threaded.asyncify.mjs; do
  cp -a "$ort/dist/$f" "$ort_dst/onnxruntime-web/dist/" || die "$ort/dist/$f is missing"
done
# a reproducible tar (sorted names, fixed times and owners): recompressed only when it changed
nm_tar() { tar -C "$stage" --sort=name --mtime=@0 --owner=0 --group=0 --numeric-owner -cf - node_modules; }
nm_sum="$(nm_tar | sha256sum | cut -d' ' -f1)"
if ((FORCE)) || [[ ! -s "$PACK/node_modules.tar.xz" ]] ||
  [[ "$(cat "$PACK/node_modules.sha256" 2>/dev/null)" != "$nm_sum" ]]; then
  say "compressing the pruned node_modules ($(du -sh "$nm" | cut -f1); xz -9, a few minutes)"
  nm_tar | xz -9 -T1 >"$PACK/node_modules.tar.xz.part"
  mv "$PACK/node_modules.tar.xz.part" "$PACK/node_modules.tar.xz"
  echo "$nm_sum" >"$PACK/node_modules.sha256"
else
  say "node_modules.tar.xz is up to date"
fi

# 3. the Vulkan / EGL loaders, as the device tool's README says (amd64, a private apt list)
rm -rf "$PACK/debs"
mkdir -p "$PACK/debs" /tmp/gpu_pack_apt/partial
apt_o=(-oAPT::Architecture=amd64 -oAPT::Architectures=amd64 -oDir::State::Lists=/tmp/gpu_pack_apt)
apt-get "${apt_o[@]}" update -qq || die "apt-get update failed"
(cd "$PACK/debs" && apt-get "${apt_o[@]}" download -qq libvulkan1 libegl1 libglvnd0 libopengl0 \
  libgl1 libglx0 libgles2 2>&1 | grep -v 'unsandboxed as root' >&2 || true)
n_debs=$(find "$PACK/debs" -name '*.deb' | wc -l)
((n_debs == 7)) || die "apt-get download gave $n_debs of 7 .debs"

# 4. manifest and sizes
{
  echo "deno $DENO_VERSION sha256 $sum"
  # gpu_check.sh compares this line with deno.json's imports and refuses a stale pack
  echo "packages onnxruntime-web@$ORT_VERSION zod@$ZOD_VERSION commander@$CMD_VERSION"
  echo "built $(date -u +%FT%TZ) from $(git rev-parse --short HEAD)"
  (cd "$PACK" && find . -type f ! -name manifest.txt -printf '%P\n' | sort | xargs sha256sum)
} >"$PACK/manifest.txt"
tree_bytes=$({
  git ls-files -z
  git ls-files -z -o --exclude-standard
} | xargs -0 -r stat -c %s -- 2>/dev/null | awk '{s += $1} END {print s + 0}')
pack_bytes=$(find "$PACK" -type f -printf '%s\n' | awk '{s += $1} END {print s + 0}')
mib() { awk -v b="$1" 'BEGIN {printf "%.1f", b / 1048576}'; }
total=$((tree_bytes + pack_bytes))
(cd "$PACK" && find . -type f -printf '%s\t%P\n' | sort -k2 |
  awk -F'\t' '{printf "  %8.2f MiB  %s\n", $1 / 1048576, $2}') >&2
say "working tree $(mib "$tree_bytes") MiB + .gpu $(mib "$pack_bytes") MiB = $(mib "$total") MiB (limit $LIMIT_MIB MiB)"
if ((total > LIMIT_MIB * 1048576)); then
  die "working tree plus pack exceed $LIMIT_MIB MiB: the device tool would refuse the call"
fi
echo "$(mib "$total")"
