#!/usr/bin/env bash
# Build an emulated aarch64 Debian userland (a Raspberry Pi 4/5 class board, 64-bit bookworm) in
# .arm/sysroot: Debian's arm64 python3 and libstdc++6 unpacked with dpkg-deb, aarch64 wheels from
# PyPI for ai-edge-litert (site-litert) and for tflite-runtime 2.14 with numpy<2 (site-tflite).
# Only qemu-user-static goes into the host; the arm64 apt state is private to .arm/.
set -euo pipefail
cd "$(dirname "$0")/.."
ARM=${ARM_DIR:-.arm}
SYSROOT=$ARM/sysroot
PIP="${PIP:-.venv/bin/pip}"

if ! command -v qemu-aarch64-static >/dev/null; then
  apt-get update -qq && apt-get install -y -qq qemu-user-static >/dev/null
fi

if [ ! -x "$SYSROOT/usr/bin/python3.11" ]; then
  mkdir -p "$ARM/apt/lists/partial" "$ARM/apt/cache/archives/partial" "$ARM/deb"
  : > "$ARM/apt/status"
  # The machine's own Debian mirror and suite, for arm64.
  grep -h -E '^(URIs|Suites|Components|Signed-By):' /etc/apt/sources.list.d/debian.sources 2>/dev/null \
    | sed 's/^/  /' > "$ARM/mirror.txt" || true
  uri=$(awk '/URIs:/{print $2; exit}' /etc/apt/sources.list.d/debian.sources 2>/dev/null || echo http://deb.debian.org/debian)
  suite=$(awk '/Suites:/{print $2; exit}' /etc/apt/sources.list.d/debian.sources 2>/dev/null || echo bookworm)
  echo "deb [arch=arm64 signed-by=/usr/share/keyrings/debian-archive-keyring.gpg] $uri $suite main" > "$ARM/sources.list"
  cat > "$ARM/apt.conf" <<CONF
APT::Architecture "arm64";
APT::Architectures { "arm64"; };
Dir::State "$PWD/$ARM/apt";
Dir::State::Lists "$PWD/$ARM/apt/lists";
Dir::State::status "$PWD/$ARM/apt/status";
Dir::Cache "$PWD/$ARM/apt/cache";
Dir::Etc::SourceList "$PWD/$ARM/sources.list";
Dir::Etc::SourceParts "/nonexistent";
Debug::NoLocking "true";
CONF
  export APT_CONFIG="$ARM/apt.conf"
  apt-get update -qq
  apt-get install -y -qq --download-only --no-install-recommends python3 libstdc++6 >/dev/null
  mkdir -p "$SYSROOT"
  for deb in "$ARM"/apt/cache/archives/*.deb; do dpkg-deb -x "$deb" "$SYSROOT"; done
  # bookworm keeps /lib and /bin as real folders; trixie merges them into /usr: link them if absent.
  for d in bin sbin lib; do [ -e "$SYSROOT/$d" ] || ln -s "usr/$d" "$SYSROOT/$d"; done
fi

# qemu 7.2 passes the host's x86 /proc/cpuinfo through and LiteRT crashes parsing it: give it a
# Cortex-A72's (Raspberry Pi 4), which qemu's prefix lookup finds first.
mkdir -p "$SYSROOT/proc"
: > "$SYSROOT/proc/cpuinfo"
for core in 0 1 2 3; do
  cat >> "$SYSROOT/proc/cpuinfo" <<CPU
processor	: $core
BogoMIPS	: 108.00
Features	: fp asimd evtstrm crc32 cpuid
CPU implementer	: 0x41
CPU architecture: 8
CPU variant	: 0x0
CPU part	: 0xd08
CPU revision	: 3

CPU
done

PLATFORMS=(--platform manylinux2014_aarch64)
for n in $(seq 17 41); do PLATFORMS+=(--platform "manylinux_2_${n}_aarch64"); done
# Each --target directory is used on its own, so pip's check against this venv's packages (numpy 2)
# would only print false conflicts: --no-warn-conflicts.
WHEELS=(--no-warn-conflicts --only-binary=:all: --python-version 3.11 --implementation cp --abi cp311
        "${PLATFORMS[@]}")
if [ ! -d "$ARM/site-litert/ai_edge_litert" ] || [ ! -d "$ARM/site-litert/starlette" ]; then
  "$PIP" install -q --target "$ARM/site-litert" "${WHEELS[@]}" ai-edge-litert numpy pillow pytest click \
    starlette uvicorn av httpx2
fi
if [ ! -d "$ARM/site-tflite/tflite_runtime" ] || [ ! -d "$ARM/site-tflite/starlette" ]; then
  "$PIP" install -q --target "$ARM/site-tflite" "${WHEELS[@]}" "tflite-runtime==2.14.0" "numpy<2" pillow pytest click \
    starlette uvicorn av httpx2
fi
# tflite-runtime 2.14 for this x86 host too: ARM is compared with the host under the same runtime.
if [ ! -d "$ARM/site-tflite-x86/tflite_runtime" ]; then
  "$PIP" install -q --no-warn-conflicts --target "$ARM/site-tflite-x86" --only-binary=:all: \
    "tflite-runtime==2.14.0" "numpy<2"
fi
echo "aarch64 sysroot ready in $SYSROOT"
