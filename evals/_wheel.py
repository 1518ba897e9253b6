"""Data files out of a PyPI wheel, without installing it: `pip download --no-deps`, hash-checked.

Nothing of the package is built, installed or imported; only the named members are copied out of
the wheel (a zip) into the cache. Used for BFCL's data, whose package pins heavy dependencies.
"""

from __future__ import annotations

import subprocess
import sys
import tempfile
import zipfile
from pathlib import Path

from tooltoken.tools import ToolError

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
        req = Path(tmp) / "requirements.txt"
        req.write_text(f"{requirement} --hash=sha256:{sha256}\n", encoding="utf-8")
        cmd = [
            sys.executable, "-m", "pip", "download", "--no-deps", "--only-binary", ":all:", "--require-hashes",
            "--disable-pip-version-check", "--no-input", "--quiet", "-r", str(req), "-d", tmp,
        ]  # fmt: skip
        try:
            done = subprocess.run(cmd, check=False, capture_output=True, text=True, timeout=600,
                                  stdin=subprocess.DEVNULL)
        except (OSError, subprocess.TimeoutExpired) as exc:
            raise DataFetchError(f"could not run pip to fetch {requirement}: {exc}") from None
        if done.returncode != 0:
            tail = " ".join(done.stderr.strip().splitlines()[-3:])
            raise DataFetchError(f"pip could not download {requirement}: {tail} "
                                 "Check network access to PyPI, or set TOOLTOKEN_CACHE_DIR to a cache that has it.")
        wheels = list(Path(tmp).glob("*.whl"))
        if len(wheels) != 1:
            raise DataFetchError(f"pip download of {requirement} left {len(wheels)} wheels; expected one")
        staged = Path(tmp) / "staged"
        staged.mkdir()
        try:
            with zipfile.ZipFile(wheels[0]) as wheel:
                for member, name in members.items():
                    (staged / name).write_bytes(wheel.read(member))
        except (zipfile.BadZipFile, KeyError) as exc:
            raise DataFetchError(f"{wheels[0].name} does not hold the expected data: {exc}") from None
        for name in members.values():
            (staged / name).replace(target / name)
    (target / "COMPLETE").write_text(f"{requirement} sha256:{sha256}\n", encoding="utf-8")
    return target
