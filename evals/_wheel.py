"""Data files out of a PyPI wheel, without installing it: `pip download --no-deps`, hash-checked.

Nothing of the package is built, installed or imported; only the named members are copied out of
the wheel (a zip) into the cache. Used for BFCL's data, whose package pins heavy dependencies.
"""

from __future__ import annotations

import tempfile
import zipfile
from pathlib import Path

from tooltoken.tools import ToolError
from tooltoken.tools._wheel import download_wheel

__all__ = ["DataFetchError", "extract_from_wheel"]


class DataFetchError(ToolError):
    """An eval data set could not be downloaded or read."""


def extract_from_wheel(requirement: str, sha256: str, members: dict[str, str], target: Path) -> Path:
    """Copy `members` (wheel path -> file name) of the wheel `requirement` into `target`.

    Files already in `target` are kept; the download happens only if one is missing. The files
    appear all at once: they are written to a temporary folder and moved in one by one only
    after every one was read, and the marker file `COMPLETE` is written last.
    """
    if (target / "COMPLETE").exists() and all((target / name).exists() for name in members.values()):
        return target
    target.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(prefix="wheel-", dir=target) as tmp:
        wheel_path = download_wheel(requirement, sha256, Path(tmp), DataFetchError)
        staged = Path(tmp) / "staged"
        staged.mkdir()
        try:
            with zipfile.ZipFile(wheel_path) as wheel:
                for member, name in members.items():
                    (staged / name).write_bytes(wheel.read(member))
        except (zipfile.BadZipFile, KeyError) as exc:
            raise DataFetchError(f"{wheel_path.name} does not hold the expected data: {exc}") from None
        for name in members.values():
            (staged / name).replace(target / name)
    (target / "COMPLETE").write_text(f"{requirement} sha256:{sha256}\n", encoding="utf-8")
    return target
