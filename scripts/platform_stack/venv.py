"""The virtualenv bootstrap: the one part of the supervisor that runs on the system Python.

``python3 scripts/stack.py venv`` (and ``up`` outside the virtualenv) import only this module and
``common`` before the virtualenv exists: stdlib only.

The interpreter the virtualenv is made from is chosen, not taken from whoever runs this script: every web
worker, consumer and test of the platform runs on it. ``VENV_PYTHON`` names one; otherwise the operating
system's own Python 3.11 (``/usr/bin/python3.11``, which Debian builds statically linked and
profile-optimized, as the official ``python:3.11`` images that the Dockerfile uses are) when it can make a
virtualenv, else the Python running this script. Measured (docs/performance.md): a vote request costs
~20 % less CPU on Debian's build than on a default pyenv build (``--enable-shared``, no PGO/LTO), whose
every call into the interpreter goes through ``libpython3.11.so``. A virtualenv made from another
interpreter than the chosen one is made again.
"""

from __future__ import annotations

import hashlib
import os
import shutil
import subprocess
import sys
from pathlib import Path

from .common import REPO, VENV, file_lock

REQUIREMENT_FILES = sorted((REPO / "requirements").glob("*.txt")) + [REPO / "servicekit" / "pyproject.toml"]
SYSTEM_PYTHON = Path("/usr/bin/python3.11")
INSTALLER = REPO / "requirements" / "installer.txt"  # uv, which installs the rest
PYTHON_VERSION = (3, 11)


def base_python() -> Path:
    """The interpreter ``.venv`` is made from: ``VENV_PYTHON``, the system's Python 3.11, or this one."""
    chosen = os.environ.get("VENV_PYTHON")
    if chosen:
        return Path(chosen)
    if SYSTEM_PYTHON.is_file() and _can_make_venv(SYSTEM_PYTHON):
        return SYSTEM_PYTHON
    return Path(sys.executable)


def _can_make_venv(python: Path) -> bool:
    """Whether ``python`` is a 3.11 with the venv and ensurepip modules (Debian ships them in python3.11-venv)."""
    check = f"import sys, ensurepip, venv; sys.exit(sys.version_info[:2] != {PYTHON_VERSION!r})"
    try:
        return subprocess.run([str(python), "-c", check], capture_output=True, timeout=30).returncode == 0
    except (OSError, subprocess.TimeoutExpired):
        return False


def venv_base(venv: Path = VENV) -> Path | None:
    """The interpreter an existing virtualenv was made from (``executable`` in its ``pyvenv.cfg``)."""
    try:
        lines = (venv / "pyvenv.cfg").read_text().splitlines()
    except OSError:
        return None
    for line in lines:
        key, _, value = line.partition("=")
        if key.strip() == "executable":
            return Path(value.strip())
    return None


def _same_file(a: Path | None, b: Path) -> bool:
    return a is not None and os.path.realpath(a) == os.path.realpath(b)


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
    base = base_python()

    def current() -> bool:  # made from ``base``, with the wanted requirements installed
        installed = python.exists() and marker.is_file() and marker.read_text().strip() == wanted
        return installed and _same_file(venv_base(), base)

    if current():
        return python
    with file_lock(REPO / ".run" / "venv.lock"):
        if current():
            return python
        if python.exists() and not _same_file(venv_base(), base):
            log(f"making {VENV} again from {base} (it was made from {venv_base()})")
            shutil.rmtree(VENV)
        if not python.exists():
            log(f"creating virtualenv {VENV} from {base}")
            subprocess.run([str(base), "-m", "venv", str(VENV)], check=True)
        log("installing pinned requirements (requirements/dev.txt) and servicekit (editable)")
        install_requirements(python, log=log)
        marker.write_text(wanted + "\n")
    return python


def install_requirements(python: Path, log=print) -> None:
    """Install requirements/dev.txt and servicekit (editable) into the virtualenv of ``python``.

    pip installs the pinned uv (requirements/installer.txt), and uv installs the rest: it fetches and unpacks in
    parallel, ~15 s where pip takes ~80 s (docs/performance.md). If uv cannot be installed or fails (a platform
    without its wheel, an index only pip's configuration names), pip installs everything.
    """
    pip = [str(python), "-m", "pip", "install", "--disable-pip-version-check", "-q"]
    steps = [["-r", str(REPO / "requirements" / "dev.txt")], ["--no-deps", "-e", str(REPO / "servicekit")]]
    try:
        subprocess.run([*pip, "-r", str(INSTALLER)], check=True)
        uv = [str(python), "-m", "uv", "pip", "install", "--python", str(python), "-q"]
        for step in steps:
            subprocess.run([*uv, *step], check=True)
        return
    except (OSError, subprocess.CalledProcessError) as exc:
        log(f"uv could not install the requirements ({exc}); installing them with pip")
    for step in steps:
        subprocess.run([*pip, *step], check=True)


def in_venv() -> bool:
    return Path(sys.prefix).resolve() == VENV.resolve()
