#!/usr/bin/env bash
# Cross-builds prebuilds/linux-arm64/ov-diffusion.node on a Debian x86-64 machine (docs/native-build.md).
#
#   apt-get install g++-aarch64-linux-gnu cmake      # once
#   bash scripts/cross/build-linux-arm64.sh
#
# The same CMakeLists.txt as the x64 prebuild, with scripts/cross/aarch64-linux-gnu.cmake as the toolchain, against
# the pinned openvino/openvino-tokenizers manylinux aarch64 wheels (installed by scripts/runtime.js into
# .cache/arm64/site-packages, never into runtime/, which stays the runtime of this machine). The result gets the same
# RUNPATH and baked-in source hash as the x64 prebuild, is stripped like prebuildify --strip does, and is checked.
# Test it under emulation with: node --test test/linux-arm64.test.js
set -euo pipefail
cd "$(dirname "$0")/../.."
ROOT=$PWD
CACHE=$ROOT/.cache/arm64
SITE=$CACHE/site-packages
BUILD=$CACHE/build
OUT=$ROOT/prebuilds/linux-arm64/ov-diffusion.node

for tool in aarch64-linux-gnu-g++ aarch64-linux-gnu-strip cmake; do
  command -v "$tool" >/dev/null || { echo "missing $tool: apt-get install g++-aarch64-linux-gnu cmake" >&2; exit 1; }
done

# The aarch64 runtime: headers + CMake config to build against, and the libraries the emulated test runs on.
node -e '
  const r = require("./scripts/runtime");
  const site = process.argv[1];
  if (r.missingPieces(site).length === 0) process.exit(0);
  const python = r.findPython();
  if (!python) { console.error("python3 with pip is needed to fetch the aarch64 wheels"); process.exit(1); }
  require("fs").rmSync(site, { recursive: true, force: true });
  r.installWheels(python, site, "arm64");
' "$SITE"

# cmake-js supplies the Node-API headers (node-api-headers, no Node download) as for x64; NAPI_VERSION=8 is set in
# CMakeLists.txt. cmake-js uses Ninja when it is installed (as here), else Make.
node node_modules/cmake-js/bin/cmake-js compile --arch arm64 --out "$BUILD" --config Release \
  --CDCMAKE_TOOLCHAIN_FILE="$ROOT/scripts/cross/aarch64-linux-gnu.cmake" \
  --CDOpenVINO_DIR="$SITE/openvino/cmake"

mkdir -p "$(dirname "$OUT")"
aarch64-linux-gnu-strip --strip-all -o "$OUT" "$BUILD/Release/ov-diffusion.node"

# Checks: the right machine, the package-relative RUNPATH with no build path, the tree's source hash.
readelf -h "$OUT" | grep -q 'Machine:.*AArch64' || { echo "$OUT is not an AArch64 binary" >&2; exit 1; }
readelf -d "$OUT" | grep -q 'RUNPATH.*\[\$ORIGIN/\.\./\.\./runtime/site-packages/openvino/libs\]' \
  || { echo "$OUT lacks the RUNPATH \$ORIGIN/../../runtime/site-packages/openvino/libs" >&2; exit 1; }
if readelf -d "$OUT" | grep -q "$ROOT"; then echo "$OUT has a build path in its dynamic section" >&2; exit 1; fi
hash=$(node scripts/source-hash.js)
grep -q "$hash" "$OUT" || { echo "$OUT does not carry the tree's source hash $hash" >&2; exit 1; }
echo "wrote $OUT ($(stat -c %s "$OUT") bytes, source hash $hash)"
