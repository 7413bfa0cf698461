"""Download and unpack the official PASCAL VOC 2007 archives, verifying their md5 sums."""

from __future__ import annotations

import os
import shutil
import tarfile
import urllib.error
import urllib.request
from pathlib import Path

from edge.bundle import file_hash
from toolkit.errors import UserError

MIRROR = "http://host.robots.ox.ac.uk/pascal/VOC/voc2007/"
ARCHIVES = {  # name -> md5 (the sums torchvision and the devkit users check against)
    "VOCtrainval_06-Nov-2007.tar": "c52e279531787c972589f7e41ab4ae64",
    "VOCtest_06-Nov-2007.tar": "b6e924de25625d8de591ea690078ad9f",
}
BY_HAND = ("download {names} from {mirror} (or a mirror), put them in {dest} and run this command again: "
           "present archives are verified and unpacked without downloading")


def _download(url: str, dest: Path, timeout: float) -> None:
    tmp = dest.with_name(dest.name + ".part")
    try:
        with urllib.request.urlopen(url, timeout=timeout) as response, open(tmp, "wb") as f:
            shutil.copyfileobj(response, f, 1 << 20)
    except (urllib.error.URLError, OSError, TimeoutError) as err:
        tmp.unlink(missing_ok=True)
        reason = getattr(err, "reason", err)
        hint = BY_HAND.format(names=", ".join(ARCHIVES), mirror=MIRROR, dest=dest.parent)
        raise UserError(f"{url}: cannot download ({reason}); {hint}") from None
    os.replace(tmp, dest)


def fetch_voc2007(dest: str | Path, mirror: str = MIRROR, timeout: float = 30.0) -> Path:
    """Into ``dest``: the archives (kept for re-use) and ``dest/VOCdevkit/VOC2007``; returns VOCdevkit."""
    dest = Path(dest)
    dest.mkdir(parents=True, exist_ok=True)
    for name, md5 in ARCHIVES.items():
        archive = dest / name
        if not archive.is_file():
            print(f"downloading {mirror}{name}")
            _download(mirror + name, archive, timeout)
        if file_hash(archive, "md5") != md5:
            raise UserError(f"{archive}: md5 does not match the official archive ({md5}); delete it and retry")
        print(f"unpacking {archive}")
        with tarfile.open(archive) as tar:
            tar.extractall(dest, filter="data")
    return dest / "VOCdevkit"
