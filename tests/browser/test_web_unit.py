"""The client's own unit tests (``node --test web/tests``) as part of ``make test``; also checks the build."""

from __future__ import annotations

import re
import shutil
import subprocess
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]


def test_client_unit_tests_pass_under_node():
    node = shutil.which("node") or shutil.which("nodejs")
    assert node, "node is missing: install Debian's nodejs (apt-get install -y nodejs)"
    result = subprocess.run([node, "--test", "web/tests/"], cwd=REPO, capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, result.stdout[-4000:] + result.stderr[-2000:]
    assert re.search(r"^# fail 0$", result.stdout, re.M), result.stdout[-2000:]


def test_build_hashes_every_asset_and_rewrites_imports(tmp_path):
    out = tmp_path / "dist"
    subprocess.run([sys.executable, str(REPO / "web" / "build.py"), str(out)], check=True, capture_output=True)
    html = (out / "index.html").read_text()
    assets = sorted(p.relative_to(out).as_posix() for p in out.rglob("*") if p.is_file())
    hashed = [a for a in assets if a.startswith("assets/")]
    assert hashed and all(re.search(r"\.[0-9a-f]{12}\.(js|css|svg)$", a) for a in hashed)
    assert re.search(r'<script type="module" src="/assets/js/main\.[0-9a-f]{12}\.js"></script>', html)
    assert "<style" not in html and " style=" not in html and "onclick" not in html
    for module in out.rglob("*.js"):
        for spec in re.findall(r'from "(\.[^"]+)"', module.read_text()):
            assert re.search(r"\.[0-9a-f]{12}\.js$", spec), f"{module.name} imports unhashed {spec}"
            assert (module.parent / spec).resolve().is_file(), f"{module.name} imports missing {spec}"
