#!/usr/bin/env bash
# Build the one-folder app with PyInstaller and self-test the result:
#   packaging/build.sh full   (PyTorch included; about 5 GB)   -> dist/full/cnndesk/cnndesk
#   packaging/build.sh lite   (no PyTorch; ONNX Runtime only)  -> dist/lite/cnndesk/cnndesk
# Writes build/package-<flavour>.json (build seconds, size) and prints the biggest parts.
set -euo pipefail
cd "$(dirname "$0")/.."
flavour="${1:-full}"
case "$flavour" in full|lite) ;; *) echo "usage: $0 full|lite" >&2; exit 2;; esac
scripts/setup.sh dev,cluster
.venv/bin/python -m pip install -q "pyinstaller>=6.10"

echo "build: staging the default model's weights and verified ONNX exports"
rm -rf build/stage && mkdir -p build/stage/weights build/stage/onnx
export CNNDESK_CACHE_DIR="$PWD/build/stage/cache"
.venv/bin/python - <<'PY'
import shutil
from cnndesk.core.features import FeatureExtractor
from cnndesk.core.inference import Classifier
from cnndesk.core.models.registry import default_model

spec = default_model()
import hashlib
from pathlib import Path

weights = spec.weights.local_path()
shutil.copy(weights, "build/stage/weights/")
digest = hashlib.sha256(weights.read_bytes()).hexdigest()
Path("build/stage/weights", weights.name + ".sha256").write_text(digest + "\n")
assert Classifier(spec).backend == "onnx"   # exports + verifies the classifier
FeatureExtractor(spec)                       # and the feature extractor (quick training)
FeatureExtractor(spec, stages="multi")       # multi-stage features (quick training, novelty)
# the classifier layer as a numpy head: the lite build computes logits as features @ W.T + b
import numpy as np
from cnndesk.core.models.build import build_model

net = build_model(spec)
np.savez("build/stage/head.npz", weight=net.classifier.weight.detach().numpy(),
         bias=net.classifier.bias.detach().numpy())
PY
cp build/stage/cache/onnx/*.onnx build/stage/cache/onnx/*.json build/stage/onnx/
if [ "$flavour" = lite ]; then  # features export + numpy head instead of a second 19 MB export
  rm -f build/stage/onnx/efficientnet-lite0-[0-9a-f][0-9a-f][0-9a-f][0-9a-f]*.onnx build/stage/onnx/efficientnet-lite0-[0-9a-f][0-9a-f][0-9a-f][0-9a-f]*.json
  mv build/stage/head.npz build/stage/onnx/efficientnet-lite0-head.npz
fi
unset CNNDESK_CACHE_DIR

start=$(date +%s)
CNNDESK_FLAVOUR="$flavour" .venv/bin/pyinstaller --noconfirm --clean --log-level WARN \
    --distpath "dist/$flavour" --workpath "build/pyinstaller-$flavour" packaging/cnndesk.spec
seconds=$(( $(date +%s) - start ))
# libpython from pyenv keeps its debug symbols (about 18 MB): drop them (other libraries are left
# alone: stripping auditwheel-patched ones such as numpy's OpenBLAS breaks them)
for lib in "dist/$flavour/cnndesk/_internal"/libpython3*.so*; do
  [ -f "$lib" ] && command -v strip >/dev/null && strip --strip-debug "$lib" || true
done
app="dist/$flavour/cnndesk"
size_mb=$(du -sm "$app" | cut -f1)
echo "build: $flavour built in ${seconds} s, ${size_mb} MB"
(du -sm "$app"/_internal/* 2>/dev/null | sort -rn | head -12) || true

echo "build: self-test of the frozen app (empty cache, settings and data: nothing borrowed)"
tmp=$(mktemp -d)
CNNDESK_CACHE_DIR="$tmp/cache" CNNDESK_DATA_DIR="$tmp/data" XDG_CONFIG_HOME="$tmp/config" \
    QT_QPA_PLATFORM=offscreen "$app/cnndesk" --selftest
echo "build: launch -> first paint of the window (offscreen, median of 3)"
paint=$(for i in 1 2 3; do
  t0=$(date +%s.%N)
  p=$(CNNDESK_STARTUP_PROBE=1 CNNDESK_CACHE_DIR="$tmp/cache" XDG_CONFIG_HOME="$tmp/config" QT_QPA_PLATFORM=offscreen \
      "$app/cnndesk" 2>/dev/null | sed -n 's/^first-paint \([0-9.]*\).*/\1/p')
  .venv/bin/python -c "print(round($p - $t0, 3))"
done | sort -n | sed -n 2p)
echo "build: first paint after ${paint} s"
printf '{"flavour": "%s", "build_seconds": %s, "size_mb": %s, "first_paint_s": %s, "selftest": "passed"}\n' \
    "$flavour" "$seconds" "$size_mb" "$paint" > "build/package-$flavour.json"
cat "build/package-$flavour.json"
