"""The client's own unit tests (``node --test web/tests``) as part of ``make test``; also checks the build."""

from __future__ import annotations

import importlib.util
import json
import re
import shutil
import subprocess
import sys
import threading
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


def load_build_module():
    spec = importlib.util.spec_from_file_location("web_build", REPO / "web" / "build.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def served_paths(dist: Path) -> list[Path]:
    """``index.html`` and every asset it names: what a browser asks the gateway for on a first load."""
    html = (dist / "index.html").read_text(encoding="utf-8")
    return [dist / "index.html"] + [dist / name for name in re.findall(r'(?:href|src)="/(assets/[^"]+)"', html)]


def test_a_rebuild_never_leaves_a_served_file_missing(tmp_path):
    # Every stack start rebuilds web/dist while other stacks' gateways serve it (the browser tests ran beside
    # the own-stack lane's start-ups, and a first load that met a removed tree stayed on "Loading…").
    build = load_build_module()
    dist = tmp_path / "dist"
    build.build(dist)
    inodes = {p: p.stat().st_ino for p in dist.rglob("*") if p.is_file()}
    missing: list[str] = []
    reads = 0
    stop = threading.Event()

    def browse() -> None:
        nonlocal reads
        while not stop.is_set():
            try:
                for path in served_paths(dist):
                    path.read_bytes()
            except FileNotFoundError as error:
                missing.append(str(error))
            reads += 1

    reader = threading.Thread(target=browse)
    reader.start()
    try:
        for _ in range(25):
            build.build(dist)
    finally:
        stop.set()
        reader.join(timeout=10)
    assert reads > 0
    assert missing == []
    assert {p: p.stat().st_ino for p in dist.rglob("*") if p.is_file()} == inodes  # unchanged files stay put


def test_a_changed_module_is_published_under_its_new_name_and_the_old_one_goes(tmp_path):
    build = load_build_module()
    build.SRC = tmp_path / "src"
    shutil.copytree(REPO / "web" / "src", build.SRC)
    dist = tmp_path / "dist"
    before = build.build(dist)
    with (build.SRC / "js" / "dom.js").open("a", encoding="utf-8") as module:
        module.write("\n// changed\n")
    after = build.build(dist)
    changed = {rel for rel in after if after[rel] != before[rel]}
    assert {"js/dom.js", "js/main.js"} <= changed  # main.js imports dom.js, so its name moves too
    assert "css/app.css" not in changed
    assert all(path.is_file() for path in served_paths(dist))
    assert f'src="/{after["js/main.js"]}"' in (dist / "index.html").read_text(encoding="utf-8")
    assert not any((dist / before[rel]).exists() for rel in changed)
    assert json.loads((dist / "manifest.json").read_text(encoding="utf-8")) == after
    assert not (tmp_path / "dist.tmp").exists()
