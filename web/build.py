#!/usr/bin/env python3
"""Build the browser client: web/src -> web/dist with content-hashed asset names.

    python3 web/build.py            # from anywhere; writes web/dist/ (in place, see publish)

ES modules are kept as modules (no bundler, no npm): each module's relative imports are rewritten
to the hashed names of its dependencies (dependencies first, so a change to one module renames
every module that imports it), then the module is hashed itself. CSS and the favicon are hashed,
``index.html`` is rewritten to point at the hashed files and gets ``modulepreload`` links. Only
``index.html`` keeps a stable name; Nginx serves it with ``no-cache`` and everything under
``/assets/`` as immutable. The build refuses inline scripts, inline styles and inline handlers,
which the Content-Security-Policy would block anyway.
"""

from __future__ import annotations

import hashlib
import json
import posixpath
import re
import shutil
import sys
from pathlib import Path

WEB = Path(__file__).resolve().parent
SRC = WEB / "src"
DIST = WEB / "dist"
ASSETS = "assets"

IMPORT_RE = re.compile(r"""(\bfrom\s*|\bimport\s*\(?\s*)(["'])(\.{1,2}/[^"']+)\2""")
INLINE_RE = re.compile(r"<script(?![^>]*\bsrc=)[^>]*>|<style\b|\sstyle=|\son[a-z]+=", re.IGNORECASE)


def hashed_name(rel: str, content: bytes) -> str:
    digest = hashlib.sha256(content).hexdigest()[:12]
    stem, dot, ext = rel.rpartition(".")
    return f"{stem}.{digest}.{ext}" if dot else f"{rel}.{digest}"


def build_modules(out: Path) -> dict[str, str]:
    """Hash every JS module under src/js; returns {src-relative path: dist-relative path}."""
    sources = {p.relative_to(SRC).as_posix(): p.read_text(encoding="utf-8") for p in sorted((SRC / "js").rglob("*.js"))}
    deps: dict[str, list[str]] = {}
    for rel, text in sources.items():
        found = []
        for match in IMPORT_RE.finditer(text):
            target = posixpath.normpath(posixpath.join(posixpath.dirname(rel), match.group(3)))
            if target not in sources:
                raise SystemExit(f"{rel}: imports missing module {match.group(3)}")
            found.append(target)
        deps[rel] = found

    done: dict[str, str] = {}
    visiting: set[str] = set()

    def emit(rel: str) -> None:
        if rel in done:
            return
        if rel in visiting:
            raise SystemExit(f"import cycle through {rel}")
        visiting.add(rel)
        for dep in deps[rel]:
            emit(dep)

        def rewrite(match: re.Match[str]) -> str:
            target = posixpath.normpath(posixpath.join(posixpath.dirname(rel), match.group(3)))
            relative = posixpath.relpath(done[target], posixpath.dirname(done_base(rel)))
            if not relative.startswith("."):
                relative = "./" + relative
            return f"{match.group(1)}{match.group(2)}{relative}{match.group(2)}"

        text = IMPORT_RE.sub(rewrite, sources[rel])
        data = text.encode("utf-8")
        name = f"{ASSETS}/{hashed_name(rel, data)}"
        (out / name).parent.mkdir(parents=True, exist_ok=True)
        (out / name).write_bytes(data)
        done[rel] = name
        visiting.discard(rel)

    def done_base(rel: str) -> str:
        return f"{ASSETS}/{rel}"

    for rel in sources:
        emit(rel)
    return done


def copy_hashed(out: Path, rel: str) -> str:
    data = (SRC / rel).read_bytes()
    name = f"{ASSETS}/{hashed_name(rel, data)}"
    (out / name).parent.mkdir(parents=True, exist_ok=True)
    (out / name).write_bytes(data)
    return name


def build(dest: Path = DIST) -> dict[str, str]:
    tmp = dest.with_name(dest.name + ".tmp")
    shutil.rmtree(tmp, ignore_errors=True)
    tmp.mkdir(parents=True)
    manifest = build_modules(tmp)
    for rel in ("css/app.css", "favicon.svg"):
        manifest[rel] = copy_hashed(tmp, rel)

    html = (SRC / "index.html").read_text(encoding="utf-8")
    inline = INLINE_RE.search(html)
    if inline:
        raise SystemExit(f"index.html: inline code is not allowed under the CSP: {inline.group(0)!r}")
    for rel, name in manifest.items():
        html, count = re.subn(rf'(\b(?:href|src)=")({re.escape(rel)})(")', rf"\1/{name}\3", html)
        if rel in ("css/app.css", "favicon.svg", "js/main.js") and count != 1:
            raise SystemExit(f"index.html: expected one reference to {rel}")
    preloads = "".join(
        f'  <link rel="modulepreload" href="/{name}">\n'
        for rel, name in sorted(manifest.items())
        if rel.endswith(".js") and rel != "js/main.js"
    )
    html = html.replace("</head>", preloads + "</head>")
    (tmp / "index.html").write_text(html, encoding="utf-8")
    (tmp / "manifest.json").write_text(json.dumps(manifest, indent=2, sort_keys=True) + "\n", encoding="utf-8")

    publish(tmp, dest)
    return manifest


def publish(tmp: Path, dest: Path) -> None:
    """Move a finished build from ``tmp`` into ``dest`` without a moment in which a served file is missing.

    The gateways of every running stack serve ``dest`` while another stack's start-up rebuilds it (the test
    lanes start stacks beside the browser tests), so ``dest`` is never removed: the hashed assets go in
    first, each by an atomic rename and only when new or changed, then ``index.html`` and the manifest,
    which name them; files that the new build no longer names go last.
    """
    if not dest.is_dir():
        tmp.rename(dest)
        return
    built = sorted(p.relative_to(tmp) for p in tmp.rglob("*") if p.is_file())
    entry_points = {Path("index.html"), Path("manifest.json")}
    for rel in [r for r in built if r not in entry_points] + sorted(entry_points):
        target = dest / rel
        if target.is_file() and target.read_bytes() == (tmp / rel).read_bytes():
            continue
        target.parent.mkdir(parents=True, exist_ok=True)
        (tmp / rel).replace(target)
    keep = set(built)
    for stale in sorted(p for p in dest.rglob("*") if p.is_file() and p.relative_to(dest) not in keep):
        stale.unlink()
    shutil.rmtree(tmp, ignore_errors=True)


if __name__ == "__main__":
    target = Path(sys.argv[1]).resolve() if len(sys.argv) > 1 else DIST
    result = build(target)
    print(f"web client built into {target} ({len(result)} assets)")
