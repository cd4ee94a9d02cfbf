#!/usr/bin/env bash
# Installs unspat-mm and its pinned OpenMMLab stack into a virtual environment.
#
#   bash tools/install_env.sh [VENV_DIR]      (default: .venv)
#
# The order matters on a CPU-only machine:
#   * torch is pinned exactly, first, so that nothing later pulls a multi-GB CUDA build;
#   * xtcocotools is compiled against the numpy already installed (no build isolation);
#   * mmpose goes in with --no-deps: it declares chumpy and torchvision, which do not
#     install (or pull CUDA) here and which unspat-mm never imports;
#   * mmcv-lite (pure Python) stands in for the compiled mmcv; unspat_mm/compat/mmcv_ops.py
#     provides the few ops mmpose/mmdet reach for. A user's full mmcv is used when present.
set -euo pipefail

VENV=${1:-.venv}
PY=${PYTHON:-python3}
HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)

if [ ! -x "$VENV/bin/python" ]; then
  "$PY" -m venv "$VENV"
fi
PIP="$VENV/bin/python -m pip --disable-pip-version-check"

$PIP install -q --upgrade pip 'setuptools>=77.0.3' wheel
$PIP install -q torch==2.13.0
$PIP install -q -r "$HERE/requirements/build.txt"
$PIP install -q --no-build-isolation --no-binary xtcocotools -r "$HERE/requirements/xtcocotools.txt"
$PIP install -q -r "$HERE/requirements/runtime.txt" -r "$HERE/requirements/tests.txt"
$PIP install -q -r "$HERE/requirements/inference.txt"
# pyrender without its dependencies: it pins PyOpenGL==3.1.0, which cannot render on OSMesa
# and is reported to crash on EGL (its real dependencies are in inference.txt; see
# requirements/render.txt)
$PIP install -q --no-deps -r "$HERE/requirements/render.txt"
$PIP install -q --no-deps -r "$HERE/requirements/mmpose.txt"
$PIP install -q --no-deps --no-build-isolation -e "$HERE"
"$VENV/bin/python" -c "import unspat_mm, torch, mmpose, mmdet; print('unspat-mm', unspat_mm.__version__, '| torch', torch.__version__, '| mmpose', mmpose.__version__, '| mmdet', mmdet.__version__)"
