"""Every compiled module in the project's environments finds its shared libraries on a new machine.

A machine set up by hand hides a missing install step: a library installed once with apt-get makes
an import work here that fails everywhere else (tflite-support's metadata module and libusb-1.0 did).
So this does not trust what the machine has: each ELF file in each environment is run through
``ldd`` (without LD_LIBRARY_PATH), and each library it needs must come from the environment itself
or from a Debian package that a new machine has, by the list of those packages
(``MLEDGE_NEW_MACHINE_PACKAGES``, else the workplace's list beside the checkout; without one the
test skips and says why). ``dpkg -S`` names the package of each system library.
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
ENVIRONMENTS = (".venv", ".venv-edge", ".venv-mediapipe", ".arm/site-tflite-x86")
# Libraries that are absent on a machine without the hardware they drive, needed only by files that
# load on such hardware: (a part of the file's path, the library's name, why).
HARDWARE_ONLY = (
    ("ai_edge_litert/vendors/", r".*", "LiteRT's vendor plugins load with their SDKs (OpenVINO, Qualcomm QNN)"),
    ("nvidia/nvshmem/lib/nvshmem_", r".*", "NVSHMEM's cluster transports (UCX, libfabric, InfiniBand, MPI, PMIx)"),
    ("nvidia/cu13/lib/libcufile_rdma", r".*", "GPUDirect Storage over RDMA (InfiniBand)"),
    ("", r"libcuda\.so\.1", "the NVIDIA driver's library, present where a GPU is"),
)
LINE = re.compile(r"^\s*(\S+) => (?:(not found)|(\S+) \(0x[0-9a-f]+\))\s*$")


def new_machine_packages() -> set[str] | None:
    """The Debian packages a new machine has (lines ``apt<TAB>name<TAB>version``), None without a list."""
    lists = REPO.parent / ".library" / "env" / "packages"
    debian = Path("/etc/debian_version").read_text().strip() if Path("/etc/debian_version").is_file() else ""
    default = lists / ("installed-python-debian13.txt" if debian.startswith("13") else "installed-python.txt")
    path = Path(os.environ.get("MLEDGE_NEW_MACHINE_PACKAGES", default))
    if not path.is_file():
        return None
    rows = (line.split("\t") for line in path.read_text().splitlines())
    return {row[1].split(":")[0] for row in rows if len(row) >= 2 and row[0] == "apt"}


def _machine(path: Path) -> bytes | None:
    """The ELF file's machine field, None for anything else."""
    with path.open("rb") as f:
        head = f.read(20)
    return head[18:20] if head[:4] == b"\x7fELF" else None


def shared_objects(root: Path) -> list[Path]:
    """The ELF libraries under root built for this machine (an aarch64 one is for the emulator)."""
    host = _machine(Path(sys.executable).resolve())
    found = (p for p in root.rglob("*.so*") if p.is_file() and not p.is_symlink() and re.search(r"\.so(\.|$)", p.name))
    return sorted(p for p in found if _machine(p) == host)


def needed(path: Path) -> list[tuple[str, str | None]]:
    """(library, where ldd found it or None) for each library the file needs."""
    env = {k: v for k, v in os.environ.items() if k != "LD_LIBRARY_PATH"}
    out = subprocess.run(["ldd", str(path)], capture_output=True, text=True, env=env).stdout
    return [(m[1], None if m[2] else m[3]) for m in map(LINE.match, out.splitlines()) if m]


def packages_of(paths: set[str]) -> dict[str, str]:
    """The Debian package of each system library, by dpkg's database (a merged /usr has two names)."""
    variants = {p: {p, os.path.realpath(p), p.removeprefix("/usr") if p.startswith("/usr/") else "/usr" + p}
                for p in paths}
    asked = sorted(set().union(*variants.values())) if variants else []
    out = subprocess.run(["dpkg", "-S", *asked], capture_output=True, text=True).stdout if asked else ""
    owner = {}
    for line in out.splitlines():
        pkgs, _, path = line.partition(": ")
        owner[path.strip()] = pkgs.split(",")[0].split(":")[0].strip()
    return {p: next((owner[v] for v in names if v in owner), "") for p, names in variants.items()}


def problems(root: Path, packages: set[str]) -> list[str]:
    """One line for each library that a file under root would miss on a new machine."""
    files = shared_objects(root)
    with ThreadPoolExecutor(max_workers=os.cpu_count() or 2) as pool:
        deps = dict(zip(files, pool.map(needed, files)))
    own = {p.name for p in root.rglob("*.so*")}  # loaded by its package after its siblings
    system = {where for libs in deps.values() for _, where in libs if where and not Path(where).is_relative_to(REPO)}
    owners = packages_of(system)
    lines = []
    for path, libs in deps.items():
        rel = str(path.relative_to(root))
        for lib, where in libs:
            if where is None:
                if lib not in own and not any(part in rel and re.fullmatch(name, lib)
                                              for part, name, _ in HARDWARE_ONLY):
                    lines.append(f"{rel}: {lib} not found")
            elif where in owners:
                pkg = owners[where]
                if pkg not in packages:
                    source = f"Debian's {pkg}, not on a new machine" if pkg else "no Debian package (put there by hand)"
                    lines.append(f"{rel}: {lib} => {where}, from {source}")
    return lines


@pytest.mark.parametrize("env", ENVIRONMENTS)
def test_compiled_modules_need_only_what_a_new_machine_has(env):
    packages = new_machine_packages()
    if packages is None:
        pytest.skip("no list of a new machine's Debian packages (set MLEDGE_NEW_MACHINE_PACKAGES)")
    if not (shutil.which("ldd") and shutil.which("dpkg")):
        pytest.skip("ldd and dpkg are needed to tell where each library comes from")
    root = REPO / env
    if not root.is_dir():
        pytest.skip(f"{env} is not installed (make install-edge, install-mediapipe, test-arm make the others)")
    found = problems(root, packages)
    assert not found, f"{len(found)} libraries a new machine lacks:\n" + "\n".join(found[:40])
