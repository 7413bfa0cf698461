#!/usr/bin/env bash
# Run the sysroot's aarch64 Python under qemu-user: scripts/arm_run.sh {litert|tflite} ARGS...
# QEMU_CPU names a real core: qemu's default CPU advertises SVE/SME, for which LiteRT picks kernels
# that are ten times slower and, on bookworm's qemu 7.2, give wrong int8 results.
set -euo pipefail
cd "$(dirname "$0")/.."
ARM=${ARM_DIR:-.arm}
SITE=$1
shift
export QEMU_LD_PREFIX="$PWD/$ARM/sysroot"
export QEMU_CPU=${QEMU_CPU:-cortex-a72}
export PYTHONPATH="$PWD/$ARM/site-$SITE:$PWD"
export PYTHONNOUSERSITE=1 MLEDGE_EXPECT_NO_TF=1
export MLEDGE_PYTHON="qemu-aarch64-static $QEMU_LD_PREFIX/usr/bin/python3.11"
exec qemu-aarch64-static "$QEMU_LD_PREFIX/usr/bin/python3.11" "$@"
