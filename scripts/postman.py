#!/usr/bin/env python3
"""Regenerate (or check) the Postman collection and environment in contracts/postman/, run its journeys.

    .venv/bin/python scripts/postman.py             # write the collection and environment
    .venv/bin/python scripts/postman.py --check     # exit 1 and show a diff when either differs
    .venv/bin/python scripts/postman.py newman --base-url http://127.0.0.1:8080   # the journeys, by newman

The collection has one folder per committed OpenAPI document (``contracts/openapi/<service>/v<n>.yaml``,
converted by npm ``openapi-to-postmanv2``, requests grouped by tag) and, first, the "Journeys" folder
from ``contracts/postman/journeys.yaml``: requests in order with their test scripts. Regenerate after
``scripts/export_openapi.py`` changed a schema; ``tests/contract/test_postman.py`` fails while the
committed files differ from what this script produces, and runs the journeys with newman.

The output is deterministic: ids are derived from each item's place (uuid5), the converter's faked
example values come from a seeded generator (``convert.js``) and path variables are placeholders
(``<id>``); saved example responses are left out (the schemas document the responses; faked examples
would triple the file). The npm tools are
installed from ``package-lock.json`` (``npm ci``) when ``contracts/postman/node_modules`` is missing.
"""

from __future__ import annotations

import argparse
import difflib
import json
import shutil
import subprocess
import sys
import tempfile
import uuid
from pathlib import Path
from typing import Any

import yaml

REPO = Path(__file__).resolve().parent.parent
POSTMAN = REPO / "contracts" / "postman"
OPENAPI = REPO / "contracts" / "openapi"
COLLECTION = POSTMAN / "polls-platform.postman_collection.json"
ENVIRONMENT = POSTMAN / "polls-platform.postman_environment.json"
JOURNEYS = POSTMAN / "journeys.yaml"
SERVICES = ("polls", "choices", "votes")
VERSIONS = ("v1", "v2", "v3")
LOCAL_GATEWAY = "http://127.0.0.1:8080"  # `make up`'s gateway
JOURNEY_PASSWORD = "journey password 42"
SCHEMA = "https://schema.getpostman.com/json/collection/v2.1.0/collection.json"
# Converter options (contracts/postman/node_modules/openapi-to-postmanv2/OPTIONS.md).
CONVERTER_OPTIONS = {
    "folderStrategy": "Tags",
    "parametersResolution": "Schema",  # "<string>" placeholders, not invented values, where possible
    "alwaysInheritAuthentication": True,  # every request uses the collection's bearer {{accessToken}}
    "enableOptionalParameters": False,  # optional query parameters start disabled
}
ID_NAMESPACE = uuid.UUID("6f1c2a43-3e0b-4d7e-9a51-8c0f4b2d7e10")


def _locked_versions(lock: Path) -> dict[str, str] | None:
    if not lock.exists():
        return None
    return {name: entry.get("version", "") for name, entry in json.loads(lock.read_text())["packages"].items() if name}


def ensure_tools() -> None:
    """``npm ci`` in contracts/postman when its node_modules is missing (a fresh clone) or does not hold
    what package-lock.json pins (npm records what it installed in node_modules/.package-lock.json)."""
    installed = _locked_versions(POSTMAN / "node_modules" / ".package-lock.json")
    if installed is not None and installed == _locked_versions(POSTMAN / "package-lock.json"):
        return
    npm = shutil.which("npm")
    if npm is None:
        raise SystemExit("npm is needed for the Postman tools (Debian: apt-get install npm)")
    subprocess.run([npm, "ci", "--no-audit", "--no-fund", "--loglevel=error"], cwd=POSTMAN, check=True, timeout=600)


def schema_path(service: str, version: str) -> Path:
    return OPENAPI / service / f"{version}.yaml"


def convert_all() -> dict[tuple[str, str], dict]:
    """Every committed schema as a Postman collection, ``{(service, version): collection}``."""
    ensure_tools()
    pairs = [(service, version) for service in SERVICES for version in VERSIONS]
    result = subprocess.run(
        ["node", str(POSTMAN / "convert.js"), json.dumps(CONVERTER_OPTIONS)]
        + [str(schema_path(service, version)) for service, version in pairs],
        capture_output=True,
        text=True,
        timeout=300,
    )
    if result.returncode != 0:
        raise SystemExit(f"openapi-to-postmanv2 failed:\n{result.stderr}")
    return dict(zip(pairs, json.loads(result.stdout), strict=True))


def _tidy(items: list[dict], place: str) -> list[dict]:
    """Items with ids derived from their place in the tree, without saved example responses, and with
    placeholders (``<id>``) for path variables the converter made up from the id pattern: an invented
    id never names a real resource (and its random hex reads like a secret to scanners)."""
    tidy = []
    for index, item in enumerate(items):
        item = {key: value for key, value in item.items() if key != "response"}
        where = f"{place}/{index}:{item['name']}"
        if "item" in item:
            item["item"] = _tidy(item["item"], where)
        else:
            item["id"] = str(uuid.uuid5(ID_NAMESPACE, where))
            for variable in item["request"]["url"].get("variable", []):
                if not str(variable.get("value", "")).startswith("<"):
                    variable["value"] = f"<{variable['key']}>"
        tidy.append(item)
    return tidy


def generated_folder(service: str, version: str, collection: dict) -> dict:
    return {
        "name": f"{service} {version}",
        "description": collection["info"]["description"]["content"],
        "item": _tidy(collection["item"], f"{service}/{version}"),
    }


# --- the journeys ---------------------------------------------------------------------------------


def operations() -> dict[str, str]:
    """``{"POST /api/v2/polls/": what it does}`` for every operation of every committed schema."""
    found = {}
    for service in SERVICES:
        for version in VERSIONS:
            document = yaml.safe_load(schema_path(service, version).read_text())
            for path, methods in document["paths"].items():
                for method, operation in methods.items():
                    if method != "parameters":
                        about = operation.get("summary") or operation.get("description") or operation["operationId"]
                        found[f"{method.upper()} {path}"] = about.strip()
    return found


def _script(kind: str, source: str | None) -> list[dict]:
    if not source:
        return []
    return [{"listen": kind, "script": {"type": "text/javascript", "exec": source.rstrip("\n").split("\n")}}]


def journey_request(step: dict, documented: dict[str, str], place: str) -> dict:
    operation = step["operation"]
    if operation not in documented:
        raise SystemExit(f"journeys.yaml: {step['name']!r} names {operation!r}, which no committed schema has")
    method, path = operation.split(" ", 1)
    headers = {"Accept": "application/json", **step.get("headers", {})}
    request: dict[str, Any] = {
        "method": method,
        "header": [{"key": key, "value": value} for key, value in headers.items()],
        "url": "{{baseUrl}}" + step.get("url", path),
        "description": f"{operation}: {documented[operation]}",
    }
    if "body" in step:
        request["header"].append({"key": "Content-Type", "value": "application/json"})
        request["body"] = {
            "mode": "raw",
            "raw": json.dumps(step["body"], indent=2),
            "options": {"raw": {"language": "json"}},
        }
    if "as" in step:
        token = {"owner": "{{ownerToken}}", "voter": "{{voterToken}}"}[step["as"]]
        request["auth"] = {"type": "bearer", "bearer": [{"key": "token", "value": token, "type": "string"}]}
    else:
        request["auth"] = {"type": "noauth"}
    return {
        "id": str(uuid.uuid5(ID_NAMESPACE, f"{place}:{step['name']}")),
        "name": step["name"],
        "event": _script("prerequest", step.get("prerequest")) + _script("test", step.get("test")),
        "request": request,
    }


def journey_folder() -> dict:
    source = yaml.safe_load(JOURNEYS.read_text())
    documented = operations()
    return {
        "name": source["name"],
        "description": source["description"],
        "item": [
            {
                "name": folder["name"],
                "item": [
                    journey_request(step, documented, f"journeys/{f}/{i}") for i, step in enumerate(folder["requests"])
                ],
            }
            for f, folder in enumerate(source["folders"])
        ],
    }


def journey_names() -> list[str]:
    """The journey requests' names, in the order newman runs them."""
    source = yaml.safe_load(JOURNEYS.read_text())
    return [step["name"] for folder in source["folders"] for step in folder["requests"]]


# --- the files ------------------------------------------------------------------------------------


def build() -> dict[Path, str]:
    """The collection and environment files as this script writes them."""
    converted = convert_all()
    collection = {
        "info": {
            "_postman_id": str(uuid.uuid5(ID_NAMESPACE, "collection")),
            "name": "Polls Platform",
            "description": (
                "Generated by scripts/postman.py from contracts/openapi/ (one folder per service and API "
                "version) and contracts/postman/journeys.yaml (the Journeys folder, with tests). Do not edit "
                "by hand: regenerate. Requests use the collection's bearer token {{accessToken}}; running "
                "Journeys sets it to the journey owner's."
            ),
            "schema": SCHEMA,
        },
        "item": [journey_folder()] + [generated_folder(s, v, converted[(s, v)]) for s, v in converted],
        "auth": {"type": "bearer", "bearer": [{"key": "token", "value": "{{accessToken}}", "type": "string"}]},
        "variable": [
            {"key": "baseUrl", "value": LOCAL_GATEWAY},
            {"key": "accessToken", "value": ""},
        ],
    }
    environment = {
        "id": str(uuid.uuid5(ID_NAMESPACE, "environment")),
        "name": "Polls Platform (make up)",
        "values": [
            {"key": "baseUrl", "value": LOCAL_GATEWAY, "type": "default", "enabled": True},
            {"key": "password", "value": JOURNEY_PASSWORD, "type": "secret", "enabled": True},
            {"key": "ownerUsername", "value": "", "type": "default", "enabled": True},
            {"key": "voterUsername", "value": "", "type": "default", "enabled": True},
        ],
        "_postman_variable_scope": "environment",
    }
    return {COLLECTION: _render(collection), ENVIRONMENT: _render(environment)}


def _render(document: dict) -> str:
    return json.dumps(document, indent=2, ensure_ascii=False) + "\n"


# --- newman ---------------------------------------------------------------------------------------


def newman(base_url: str, *, env_vars: dict[str, str] | None = None, folder: str = "Journeys") -> dict:
    """Run ``folder`` of the committed collection with newman against ``base_url``; newman's JSON report."""
    ensure_tools()
    with tempfile.TemporaryDirectory(prefix="newman-") as tmp:
        report = Path(tmp) / "report.json"
        variables = {"baseUrl": base_url.rstrip("/"), **(env_vars or {})}
        command = [str(POSTMAN / "node_modules" / ".bin" / "newman"), "run", str(COLLECTION), "-e", str(ENVIRONMENT)]
        command += ["--folder", folder, "--timeout-request", "15000", "--timeout", "180000", "--color", "off"]
        command += [arg for key, value in variables.items() for arg in ("--env-var", f"{key}={value}")]
        command += ["--reporters", "cli,json", "--reporter-json-export", str(report)]
        result = subprocess.run(command, capture_output=True, text=True, timeout=240)
        if not report.exists():
            raise RuntimeError(f"newman wrote no report (exit {result.returncode}):\n{result.stdout}\n{result.stderr}")
        run = json.loads(report.read_text())["run"]
    run["cli_output"] = result.stdout
    return run


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("command", nargs="?", choices=("generate", "newman"), default="generate")
    parser.add_argument("--check", action="store_true", help="compare with the committed files; write nothing")
    parser.add_argument("--base-url", default=LOCAL_GATEWAY, help=f"gateway for `newman` (default {LOCAL_GATEWAY})")
    args = parser.parse_args()

    if args.command == "newman":
        run = newman(args.base_url)
        print(run["cli_output"])
        return 1 if run["failures"] else 0

    differences = 0
    for path, text in build().items():
        current = path.read_text() if path.exists() else ""
        if current == text:
            continue
        if args.check:
            differences += 1
            rel = path.relative_to(REPO)
            diff = difflib.unified_diff(
                current.splitlines(keepends=True), text.splitlines(keepends=True), f"committed {rel}", "regenerated"
            )
            sys.stdout.writelines(list(diff)[:200])
        else:
            path.write_text(text)
            print(f"wrote {path.relative_to(REPO)}")
    if differences:
        print(f"\n{differences} file(s) differ: run `.venv/bin/python scripts/postman.py`")
        return 1
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
