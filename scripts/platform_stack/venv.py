"""The virtualenv bootstrap: the one part of the supervisor that runs on the system Python.

``python3 scripts/stack.py venv`` (and ``up`` outside the virtualenv) import only this module and
``common`` before the virtualenv exists: stdlib only.
"""

from __future__ import annotations

import hashlib
import subprocess
import sys
from pathlib import Path

from .common import REPO, VENV, file_lock

REQUIREMENT_FILES = sorted((REPO / "requirements").glob("*.txt")) + [REPO / "servicekit" / "pyproject.toml"]


def requirements_hash() -> str:
    digest = hashlib.sha256()
    for path in REQUIREMENT_FILES:
        digest.update(path.name.encode())
        digest.update(path.read_bytes())
    return digest.hexdigest()


def ensure_venv(log=print) -> Path:
    """Create ``.venv`` and install the pinned requirements when missing or changed; return its python."""
    python = VENV / "bin" / "python"
    marker = VENV / ".requirements-hash"
    wanted = requirements_hash()
    if python.exists() and marker.is_file() and marker.read_text().strip() == wanted:
        return python
    with file_lock(REPO / ".run" / "venv.lock"):
        if python.exists() and marker.is_file() and marker.read_text().strip() == wanted:
            return python
        if not python.exists():
            log(f"creating virtualenv {VENV}")
            subprocess.run([sys.executable, "-m", "venv", str(VENV)], check=True)
        log("installing pinned requirements (requirements/dev.txt) and servicekit (editable)")
        pip = [str(python), "-m", "pip", "install", "--disable-pip-version-check", "-q"]
        subprocess.run([*pip, "-r", str(REPO / "requirements" / "dev.txt")], check=True)
        subprocess.run([*pip, "--no-deps", "-e", str(REPO / "servicekit")], check=True)
        marker.write_text(wanted + "\n")
    return python


def in_venv() -> bool:
    return Path(sys.prefix).resolve() == VENV.resolve()
