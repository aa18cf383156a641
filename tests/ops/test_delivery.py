"""Offline checks of the delivery pipelines and their security scanners (issue 12, docs/delivery.md).

No CI service, registry, cluster or network is needed, and the test stack is never started:

- the three pipeline definitions: actionlint on ``.github/workflows``, GitLab's CI schema (the copy
  vendored in check-jsonschema) on ``.gitlab-ci.yml``, a structural parse of the declarative
  ``Jenkinsfile``; all three run the same four stages with the repository's own commands and pinned
  images;
- the Argo Rollouts overlay the production stage applies (``k8s/overlays/rollout``);
- every kustomize overlay: its NetworkPolicies evaluated for who may reach whom, every pod non-root
  with a read-only root filesystem and no capabilities, token keys read from mounted files (no JWKS
  fetch); and checkov's kubernetes checks against ``security/checkov-skips.yaml`` (a ``scan`` test:
  checkov runs from its own virtualenv, ``requirements/checkov.txt``, installed on first use);
- the scanners, in tests whose names contain ``scan`` (stage 2 of every pipeline runs ``-k scan``):
  bandit on the code of the service images, detect-secrets on every file of the repository, a
  CycloneDX SBOM, each against its reviewed allow-list in ``security/``.

Every check is also shown to fail: on a broken pipeline file, a planted finding, a planted secret or a
tampered SBOM.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import fcntl
import fnmatch
import functools
import hashlib
import json
import os
import re
import secrets
import subprocess
import sys
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path

import pytest
import yaml

REPO = Path(__file__).resolve().parents[2]
BIN = Path(sys.executable).parent
SECURITY = REPO / "security"
WORKFLOWS = sorted((REPO / ".github" / "workflows").glob("*.yml"))
PIPELINE_FILES = [*WORKFLOWS, REPO / ".gitlab-ci.yml", REPO / "Jenkinsfile"]
JENKINS_STAGES = ["Validate", "Build and scan", "Staging", "Production"]

# What each pipeline must run, in its own words or not at all: the repository's commands, the
# scanners with their allow-lists, both Dockerfile targets, the staging stack and the canary.
PIPELINE_COMMANDS = [
    "make lint",
    "make migrations-check",
    "bash scripts/test.sh units",
    "make deploy-check",
    'tests/ops/test_delivery.py -k "not scan"',
    "tests/ops/test_delivery.py -k scan",
    "--target service --build-arg SERVICE=polls",
    "--target service --build-arg SERVICE=choice",
    "--target service --build-arg SERVICE=vote",
    "--target gateway",
    "--exit-code 1 --ignore-unfixed --severity HIGH,CRITICAL",
    "--ignorefile security/trivyignore.yaml",
    "--format cyclonedx",
    "pip-audit --strict",
    "security/pip-audit-ignore.txt",
    "cyclonedx-py requirements",
    "< scripts/devsecrets.py",
    "OPERATOR_PASSWORD=staging-",
    "docker compose up -d --no-build",
    'scripts/postman.py newman --base-url "$STAGING_URL"',
    "bash scripts/test.sh stack",
    "kustomize edit set image",
    "kubectl apply -k k8s/overlays/rollout",
    "kubectl argo rollouts status",
    "kubectl argo rollouts abort",
]

# The code that runs in the service images (scripts/, web/build.py and tests are out: security/bandit.yaml).
BANDIT_TARGETS = ["servicekit/servicekit", "polls_service", "choice_service", "vote_service"]


def run(*command: str | Path, cwd: Path = REPO, timeout: int = 120) -> subprocess.CompletedProcess:
    return subprocess.run(
        [str(c) for c in command], cwd=cwd, capture_output=True, text=True, timeout=timeout, check=False
    )


# --- GitHub Actions and GitLab CI ----------------------------------------------------------------

BROKEN_WORKFLOW = """\
name: broken
on: push
jobs:
  build:
    runs-on: ubuntu-24.04
    needs: [no-such-job]
    steps:
      - uses: actions/checkout@v4.2.2
      - run: echo "${{ github.no_such_context }}"
"""


def actionlint(workflows: list[Path], scratch: Path) -> subprocess.CompletedProcess:
    """actionlint on the workflows as written and with each action pin cut to its major tag.

    actionlint knows a popular action's inputs and runtime by major tag (``actions/checkout@v5``), not
    by the full version we pin, so the second pass checks the pins against their major's metadata
    (a Node 20 action no longer runs on GitHub's runners).
    """
    majors = []
    for workflow in workflows:
        copy = scratch / f"major-{workflow.name}"
        copy.write_text(re.sub(r"(uses:\s*[\w.-]+/[\w.-]+@v\d+)(?:\.\d+)+", r"\1", workflow.read_text()))
        majors.append(copy)
    return run(BIN / "actionlint", "-no-color", *workflows, *majors, cwd=scratch)


def test_workflows_pass_actionlint(tmp_path: Path) -> None:
    assert WORKFLOWS, "no workflow in .github/workflows"
    result = actionlint(WORKFLOWS, tmp_path)
    assert result.returncode == 0, result.stdout + result.stderr


def test_actionlint_rejects_a_broken_workflow(tmp_path: Path) -> None:
    broken = tmp_path / "broken.yml"
    broken.write_text(BROKEN_WORKFLOW)
    result = actionlint([broken], tmp_path)
    assert result.returncode == 1, result.stdout + result.stderr
    for problem in ("no-such-job", "no_such_context", 'runtime "node20" is deprecated'):
        assert problem in result.stdout, result.stdout


def test_gitlab_ci_follows_gitlabs_schema(tmp_path: Path) -> None:
    ok = run(BIN / "check-jsonschema", "--builtin-schema", "vendor.gitlab-ci", REPO / ".gitlab-ci.yml")
    assert ok.returncode == 0, ok.stdout + ok.stderr
    # The same schema refuses a job whose keyword is misspelt.
    broken = tmp_path / ".gitlab-ci.yml"
    broken.write_text("stages: [validate]\nlint:\n  stage: validate\n  scripts: [make lint]\n")
    refused = run(BIN / "check-jsonschema", "--builtin-schema", "vendor.gitlab-ci", broken)
    assert refused.returncode == 1, refused.stdout + refused.stderr


def _job_depths(jobs: dict) -> dict[str, int]:
    """The stage each GitHub job runs in: 1 + the deepest job it needs."""
    depths: dict[str, int] = {}

    def depth(name: str) -> int:
        if name not in depths:
            needs = jobs[name].get("needs", [])
            needs = [needs] if isinstance(needs, str) else needs
            depths[name] = 1 + max((depth(n) for n in needs), default=0)
        return depths[name]

    for name in jobs:
        depth(name)
    return depths


def test_github_jobs_form_the_four_stages_and_release_only_main() -> None:
    workflow = yaml.safe_load((REPO / ".github" / "workflows" / "delivery.yml").read_text())
    jobs = workflow["jobs"]
    depths = _job_depths(jobs)
    assert depths == {
        "validate": 1,
        "build": 2,
        "scan": 2,
        "staging-compose": 3,
        "staging-suite": 3,
        "production": 4,
    }
    production = jobs["production"]
    assert production["environment"] == "production"
    assert "refs/heads/main" in production["if"]
    # The secret is referenced by name, only where it is used.
    assert "${{ secrets.KUBE_CONFIG }}" in json.dumps(production)
    assert workflow["permissions"] == {"contents": "read"}


def test_gitlab_jobs_form_the_four_stages_and_release_by_hand() -> None:
    config = yaml.safe_load((REPO / ".gitlab-ci.yml").read_text())
    assert config["stages"] == ["validate", "build-scan", "staging", "production"]
    jobs = {name: job for name, job in config.items() if isinstance(job, dict) and "script" in job}
    by_stage: dict[str, set[str]] = {}
    for name, job in jobs.items():
        by_stage.setdefault(job["stage"], set()).add(name)
        for needed in job.get("needs", []):
            assert needed in jobs, f"{name} needs unknown job {needed}"
    assert by_stage == {
        "validate": {"validate"},
        "build-scan": {"build", "trivy", "scan"},
        "staging": {"staging-compose", "staging-suite"},
        "production": {"production"},
    }
    production = jobs["production"]
    assert production["environment"]["name"] == "production"
    assert production["rules"] == [{"if": "$CI_COMMIT_BRANCH == $CI_DEFAULT_BRANCH", "when": "manual"}]


# --- Jenkinsfile: a small parser for the declarative structure --------------------------------------


class JenkinsfileError(ValueError):
    """The Jenkinsfile does not even parse: unbalanced braces or brackets, an unterminated string."""


@dataclass
class Block:
    """``name(argument) { ... }`` in Groovy: ``stage('Validate') {`` is Block("stage", "Validate")."""

    name: str
    argument: str | None = None
    line: int = 0
    children: list[Block] = field(default_factory=list)
    words: list[str] = field(default_factory=list)  # identifiers directly inside (``agent any``, ``sh``)

    def child(self, name: str) -> Block | None:
        return next((c for c in self.children if c.name == name), None)


_TOKEN = re.compile(
    r"""(?P<comment>//[^\n]*|/\*.*?\*/)
      | (?P<string>'''.*?'''|\"\"\".*?\"\"\"|'(?:\\.|[^'\\\n])*'|"(?:\\.|[^"\\\n])*")
      | (?P<word>[A-Za-z_]\w*)
      | (?P<open>[({\[])
      | (?P<close>[)}\]])
      | (?P<unclosed>/\*|'''|\"\"\"|['"])
      | (?P<other>\s+|.)""",
    re.VERBOSE | re.DOTALL,
)
_PAIRS = {")": "(", "}": "{", "]": "["}


def parse_blocks(text: str) -> Block:
    """Groovy's block structure, strings and comments skipped; raises JenkinsfileError when broken."""
    root = Block("<file>")
    blocks = [root]
    opened: list[tuple[str, int]] = []  # bracket and line, innermost last
    name: str | None = None
    argument: str | None = None
    for match in _TOKEN.finditer(text):
        kind, value = match.lastgroup, match.group()
        line = text.count("\n", 0, match.start()) + 1
        # Inside (...) or [...]: call arguments (``withCredentials([file(...)])``), not block names.
        inside_call = bool(opened) and opened[-1][0] in "(["
        if kind == "unclosed":
            raise JenkinsfileError(f"line {line}: unterminated {value} (string or comment)")
        if kind == "string" and inside_call and argument is None:
            argument = value.strip("'\"")
        elif kind == "word" and not inside_call:
            name, argument = value, None
            blocks[-1].words.append(value)
        elif kind == "open":
            opened.append((value, line))
            if value == "{":
                block = Block(name if not inside_call and name else "<closure>", argument, line)
                blocks[-1].children.append(block)
                blocks.append(block)
                name, argument = None, None
        elif kind == "close":
            if not opened or opened[-1][0] != _PAIRS[value]:
                raise JenkinsfileError(f"line {line}: unexpected {value!r}")
            if opened.pop()[0] == "{":
                blocks.pop()
                name, argument = None, None
    if opened:
        bracket, line = opened[-1]
        raise JenkinsfileError(f"line {line}: {bracket!r} is never closed")
    return root


POST_CONDITIONS = {"always", "success", "failure", "unstable", "changed", "fixed", "regression", "aborted", "cleanup"}


def _stage_problems(stage: Block) -> list[str]:
    where = f"stage {stage.argument!r} (line {stage.line})"
    bodies = [c for c in stage.children if c.name in ("steps", "parallel", "stages", "matrix")]
    if len(bodies) != 1:
        return [f"{where} needs exactly one of steps, parallel, stages, matrix"]
    body = bodies[0]
    if body.name == "steps":
        return [] if body.words or body.children else [f"{where} has no step"]
    inner = [c for c in body.children if c.name == "stage"]
    if not inner:
        return [f"{where}: {body.name} holds no stage"]
    return [problem for child in inner for problem in _stage_problems(child)]


def jenkinsfile_problems(text: str, stages: list[str] = JENKINS_STAGES) -> list[str]:
    """What is missing from a declarative pipeline: pipeline/agent/stages/post and each stage's body."""
    try:
        root = parse_blocks(text)
    except JenkinsfileError as error:
        return [str(error)]
    pipelines = [c for c in root.children if c.name == "pipeline"]
    if len(pipelines) != 1 or len(root.children) != 1:
        return ["the file must hold exactly one top-level pipeline { } block"]
    pipeline = pipelines[0]
    problems = []
    if pipeline.child("agent") is None and "agent" not in pipeline.words:
        problems.append("pipeline has no agent")
    post = pipeline.child("post")
    if post is None or not {c.name for c in post.children} & POST_CONDITIONS:
        problems.append("pipeline has no post { always/success/failure ... } section")
    declared = pipeline.child("stages")
    if declared is None:
        return [*problems, "pipeline has no stages"]
    top = [c for c in declared.children if c.name == "stage"]
    names = [c.argument for c in top]
    if names != stages:
        problems.append(f"stages are {names}, expected {stages}")
    for stage in top:
        problems += _stage_problems(stage)
    return problems


def test_jenkinsfile_is_a_complete_declarative_pipeline() -> None:
    assert jenkinsfile_problems((REPO / "Jenkinsfile").read_text()) == []


# (id, text to replace, replacement, expected problem): each breaks the real Jenkinsfile one way.
BROKEN_JENKINSFILES = [
    ("open-string", "sh 'make lint'", "sh 'make lint", "unterminated"),
    ("stage-renamed", "stage('Staging')", "stage('Stagin')", "expected ['Validate'"),
    ("two-bodies", "stage('Cross-service suite') {", "stage('Cross-service suite') {\n steps { }", "exactly one"),
    (
        "no-post",
        "    post {\n        always {\n            archiveArtifacts",
        "    postx {\n        always {\n            archiveArtifacts",
        "no post",
    ),
    ("no-agent", "agent { label 'docker' }", "", "no agent"),
    ("no-stages", "    stages {\n        // -", "    stagez {\n        // -", "no stages"),
]


@pytest.mark.parametrize(
    ("old", "new", "expected"), [b[1:] for b in BROKEN_JENKINSFILES], ids=[b[0] for b in BROKEN_JENKINSFILES]
)
def test_jenkinsfile_checker_rejects_broken_files(old: str, new: str, expected: str) -> None:
    text = (REPO / "Jenkinsfile").read_text()
    assert old in text, old
    problems = jenkinsfile_problems(text.replace(old, new, 1))
    assert any(expected in p for p in problems), problems


def test_jenkinsfile_checker_rejects_a_missing_brace_and_an_empty_stage() -> None:
    text = (REPO / "Jenkinsfile").read_text()
    assert "never closed" in jenkinsfile_problems(text.rstrip().removesuffix("}"))[0]
    emptied = re.sub(r"(stage\('Validate'\).*?steps \{)[^{}]*(\})", r"\1\n\2", text, count=1, flags=re.S)
    assert emptied != text
    assert any("'Validate'" in p and "has no step" in p for p in jenkinsfile_problems(emptied))


def test_jenkinsfile_parser_skips_braces_in_strings_and_comments() -> None:
    text = "pipeline { // a } in a comment\n agent any\n stages { stage('A') { steps { sh \"echo '}' ${X}\" } } }\n"
    text += " post { always { echo '{' } } }\n"
    assert jenkinsfile_problems(text, ["A"]) == []


# --- What all three share ------------------------------------------------------------------------


@pytest.mark.parametrize("path", PIPELINE_FILES, ids=lambda p: p.name)
def test_every_pipeline_runs_the_repository_commands(path: Path) -> None:
    text = path.read_text()
    missing = [command for command in PIPELINE_COMMANDS if command not in text]
    assert not missing, f"{path.name} lacks {missing}"


def _images(path: Path) -> list[str]:
    text = path.read_text()
    found = re.findall(r"""(?:image|container|services):\s*\[?\s*['"]?([\w./-]+:[\w.-]+)""", text)
    found += re.findall(r"""image\s+'([^']+)'|TRIVY_IMAGE\s*[:=]\s*['"]?([\w./-]+:[\w.-]+)""", text)
    flat = [i for item in found for i in (item if isinstance(item, tuple) else (item,)) if i]
    return [i for i in flat if "$" not in i]


@pytest.mark.parametrize("path", PIPELINE_FILES, ids=lambda p: p.name)
def test_every_pipeline_pins_its_actions_and_images(path: Path) -> None:
    text = path.read_text()
    for action in re.findall(r"uses:\s*(\S+)", text):
        assert re.fullmatch(r"[\w.-]+/[\w.-]+@v\d+\.\d+\.\d+", action), f"{action}: pin a full version"
    images = _images(path)
    assert "python:3.11.7-bookworm" in images, images
    for image in images:
        tag = image.rsplit(":", 1)[1]
        assert re.search(r"\d", tag) and tag != "latest", f"{path.name}: {image} is not pinned"
    for tool in ("KUSTOMIZE_VERSION", "ARGO_ROLLOUTS_VERSION"):
        assert re.search(rf"{tool}\s*[:=]\s*'?v\d+\.\d+\.\d+", text), f"{path.name}: {tool} unpinned"


# --- The canary the production stage applies -----------------------------------------------------


def test_rollout_overlay_renders_a_canary_per_web_service_with_its_analysis() -> None:
    rendered = run(BIN / "kubectl", "kustomize", "k8s/overlays/rollout")
    assert rendered.returncode == 0, rendered.stderr
    objects = [doc for doc in yaml.safe_load_all(rendered.stdout) if doc]
    # Built-in kinds against the bundled schemas (strict); the Argo kinds are checked below.
    builtin = [doc for doc in objects if not doc["apiVersion"].startswith("argoproj.io/")]
    validated = subprocess.run(
        [str(BIN / "kubernetes-validate"), "--strict", "-k", "1.30", "-"],
        input=yaml.safe_dump_all(builtin),
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert validated.returncode == 0, validated.stdout + validated.stderr
    by_kind = {(d["kind"], d["metadata"]["name"]): d for d in objects}
    assert {d["metadata"]["namespace"] for d in objects if d["kind"] != "Namespace"} == {"polls"}

    template = by_kind[("AnalysisTemplate", "http-objectives")]["spec"]
    declared = {arg["name"] for arg in template["args"]}
    metrics_source = (REPO / "servicekit" / "servicekit" / "metrics.py").read_text()
    assert {m["name"] for m in template["metrics"]} == {"error-ratio", "latency-p95"}
    for metric in template["metrics"]:
        query = metric["provider"]["prometheus"]["query"]
        assert set(re.findall(r"\{\{args\.([\w-]+)\}\}", query)) == declared
        assert query.count("(") == query.count(")")
        for name in re.findall(r"\b(http_request\w+?)(?:_bucket)?\{", query):
            assert f'"{name}"' in metrics_source, f"{name} is not a servicekit metric"
        assert re.fullmatch(r"result\[0\] <= [\d.]+", metric["successCondition"])
        assert metric["failureLimit"] >= 1 and metric["interval"]

    for service in ("polls", "choices", "votes"):
        rollout = by_kind[("Rollout", service)]["spec"]
        deployment = by_kind[("Deployment", service)]["spec"]
        assert rollout["workloadRef"] == {
            "apiVersion": "apps/v1",
            "kind": "Deployment",
            "name": service,
            "scaleDown": "onsuccess",
        }
        assert deployment["replicas"] == 0, "the Rollout runs the pods; the Deployment keeps the template"
        assert rollout["selector"]["matchLabels"] == deployment["selector"]["matchLabels"]
        assert by_kind[("Service", service)]["spec"]["selector"] == rollout["selector"]["matchLabels"]
        hpa = by_kind[("HorizontalPodAutoscaler", service)]["spec"]["scaleTargetRef"]
        assert hpa == {"apiVersion": "argoproj.io/v1alpha1", "kind": "Rollout", "name": service}
        canary = rollout["strategy"]["canary"]
        weights = [step["setWeight"] for step in canary["steps"] if "setWeight" in step]
        assert weights == sorted(weights) and weights[0] <= 10 and weights[-1] < 100
        assert all("duration" in step["pause"] for step in canary["steps"] if "pause" in step)
        analysis = canary["analysis"]
        assert [t["templateName"] for t in analysis["templates"]] == ["http-objectives"]
        assert {arg["name"] for arg in analysis["args"]} == declared
        assert {"name": "service", "value": service} in analysis["args"]
    # Workers, beat and the gateway keep their Deployments.
    assert by_kind[("Deployment", "gateway")]["spec"]["replicas"] >= 1
    assert by_kind[("Deployment", "votes-worker")]["spec"]["replicas"] >= 1


# --- The Kubernetes manifests: who talks to whom, hardened pods, mounted keys, checkov ------------

K8S_OVERLAYS = ["dev", "production", "canary", "observability", "tracing", "rollout"]
SERVICES = ("polls", "choices", "votes")


@functools.cache
def rendered_overlay(overlay: str) -> str:
    rendered = run(BIN / "kubectl", "kustomize", f"k8s/overlays/{overlay}")
    assert rendered.returncode == 0, rendered.stderr
    return rendered.stdout


def overlay_objects(overlay: str) -> list[dict]:
    return [doc for doc in yaml.safe_load_all(rendered_overlay(overlay)) if doc]


def selects(selector: dict | None, labels: dict[str, str]) -> bool:
    """A Kubernetes label selector (matchLabels, matchExpressions) against a set of labels."""
    selector = selector or {}
    if any(labels.get(key) != value for key, value in (selector.get("matchLabels") or {}).items()):
        return False
    for expression in selector.get("matchExpressions") or []:
        key, operator, values = expression["key"], expression["operator"], expression.get("values", [])
        matched = {
            "In": key in labels and labels[key] in values,
            "NotIn": labels.get(key) not in values,
            "Exists": key in labels,
            "DoesNotExist": key not in labels,
        }[operator]
        if not matched:
            return False
    return True


@dataclass(frozen=True)
class Endpoint:
    """A pod (labels, namespace) or, with ``pod=None``, an address outside the cluster's pods."""

    namespace: str
    pod: tuple[tuple[str, str], ...] | None
    namespace_labels: tuple[tuple[str, str], ...] = ()

    @property
    def labels(self) -> dict[str, str]:
        return dict(self.pod or ())


def pod(namespace: str, labels: dict[str, str]) -> Endpoint:
    return Endpoint(namespace, tuple(sorted(labels.items())), (("kubernetes.io/metadata.name", namespace),))


def app(namespace: str, name: str, component: str | None = None) -> Endpoint:
    labels = {"app.kubernetes.io/name": name}
    return pod(namespace, {**labels, "app.kubernetes.io/component": component} if component else labels)


OUTSIDE = Endpoint("", None)


def _peer_matches(peer: dict, other: Endpoint, namespace: str) -> bool:
    if "ipBlock" in peer:
        return other.pod is None
    if other.pod is None:
        return False
    if "namespaceSelector" in peer:
        if not selects(peer["namespaceSelector"], dict(other.namespace_labels)):
            return False
    elif other.namespace != namespace:
        return False
    return selects(peer.get("podSelector"), other.labels)


def _side_allows(policies: list[dict], me: Endpoint, other: Endpoint, port: int, direction: str) -> bool:
    """NetworkPolicy semantics for one side: isolated once any policy of that direction selects the pod."""
    if me.pod is None:
        return True  # outside the namespace's policies
    kind, peers_key = ("Ingress", "from") if direction == "ingress" else ("Egress", "to")
    mine = [
        p
        for p in policies
        if p["metadata"]["namespace"] == me.namespace
        and kind in p["spec"].get("policyTypes", ["Ingress"])
        and selects(p["spec"]["podSelector"], me.labels)
    ]
    if not mine:
        return True
    for policy in mine:
        for rule in policy["spec"].get(direction) or []:
            ports = rule.get("ports")
            if ports is not None and not any(entry.get("port") == port for entry in ports):
                continue
            peers = rule.get(peers_key)
            if peers is None or any(_peer_matches(peer, other, me.namespace) for peer in peers):
                return True
    return False


def connection_allowed(policies: list[dict], source: Endpoint, target: Endpoint, port: int) -> bool:
    return _side_allows(policies, source, target, port, "egress") and _side_allows(
        policies, target, source, port, "ingress"
    )


def test_k8s_network_policies_let_only_the_gateway_reach_the_services() -> None:
    for overlay in ("production", "observability", "tracing"):
        objects = overlay_objects(overlay)
        policies = [doc for doc in objects if doc["kind"] == "NetworkPolicy"]
        ns = "polls" if overlay == "production" else "polls-dev"
        assert {p["metadata"]["namespace"] for p in policies} == {ns}
        web = {s: app(ns, s, "web") for s in SERVICES}
        workers = {s: app(ns, s, "worker") for s in SERVICES}
        gateway = app(ns, "gateway")
        other_app = pod("elsewhere", {"app": "intruder"})
        backend = {
            name: pod("data", {"polls-platform/backend": name})
            for name in ("polls-database", "choices-database", "votes-database", "redis", "broker")
        }
        dns = pod("kube-system", {"k8s-app": "kube-dns"})
        allowed = functools.partial(connection_allowed, policies)

        # Every pod of the namespace was selected by a policy: nothing runs unrestricted.
        for doc in objects:
            if doc["kind"] == "Deployment":
                labels = doc["spec"]["template"]["metadata"]["labels"]
                me = Endpoint(ns, tuple(sorted(labels.items())), (("kubernetes.io/metadata.name", ns),))
                assert not allowed(me, other_app, 443), f"{overlay}: {doc['metadata']['name']} reaches anything"
                assert allowed(me, dns, 53), f"{overlay}: {doc['metadata']['name']} cannot resolve names"
                assert not allowed(other_app, me, 9999), f"{overlay}: anything reaches {doc['metadata']['name']}"
        # In: only the gateway, from anywhere; the services only from the gateway and each other.
        assert allowed(OUTSIDE, gateway, 8080) and allowed(OUTSIDE, gateway, 8443)
        assert not allowed(OUTSIDE, gateway, 9113)
        for service in SERVICES:
            assert allowed(gateway, web[service], 8000), f"{overlay}: gateway -> {service}"
            assert not allowed(OUTSIDE, web[service], 8000), f"{overlay}: outside -> {service}"
            assert not allowed(other_app, web[service], 8000), f"{overlay}: another namespace -> {service}"
            for caller in SERVICES:
                if caller != service:
                    # /internal/... calls (web and Celery tasks), with the service credentials.
                    assert allowed(web[caller], web[service], 8000) and allowed(workers[caller], web[service], 8000)
            assert not allowed(gateway, workers[service], 9100)
            # Out: its own database, Redis and the broker; no other service's database, no other port.
            for who in (web[service], workers[service]):
                assert allowed(who, backend[f"{service}-database"], 5432)
                assert allowed(who, backend["redis"], 6379) and allowed(who, backend["broker"], 5672)
                for other in SERVICES:
                    if other != service:
                        assert not allowed(who, backend[f"{other}-database"], 5432), f"{service} -> {other} db"
                assert not allowed(who, backend["redis"], 5432) and not allowed(who, OUTSIDE, 443)
        assert not allowed(gateway, backend["polls-database"], 5432) and not allowed(gateway, OUTSIDE, 80)
        if overlay == "observability":
            prometheus = app(ns, "prometheus", "observability")
            grafana = app(ns, "grafana", "observability")
            assert allowed(prometheus, web["votes"], 8000) and allowed(prometheus, workers["votes"], 9100)
            assert allowed(prometheus, gateway, 9113) and allowed(grafana, prometheus, 9090)
            assert not allowed(prometheus, backend["votes-database"], 5432)
            assert not allowed(web["polls"], prometheus, 9090)
        if overlay == "tracing":
            jaeger = app(ns, "jaeger", "tracing")
            assert allowed(workers["polls"], jaeger, 4318) and allowed(web["votes"], jaeger, 4318)
            assert not allowed(gateway, jaeger, 4318) and not allowed(jaeger, web["polls"], 8000)


def test_network_policy_evaluator_follows_kubernetes_semantics() -> None:
    a, b = pod("ns", {"app": "a"}), pod("ns", {"app": "b"})
    deny = {"metadata": {"namespace": "ns"}, "spec": {"podSelector": {}, "policyTypes": ["Ingress", "Egress"]}}
    assert connection_allowed([], a, b, 80)  # no policy: not isolated
    assert not connection_allowed([deny], a, b, 80)
    egress = {
        "metadata": {"namespace": "ns"},
        "spec": {
            "podSelector": {"matchLabels": {"app": "a"}},
            "policyTypes": ["Egress"],
            "egress": [{"to": [{"podSelector": {"matchLabels": {"app": "b"}}}], "ports": [{"port": 80}]}],
        },
    }
    ingress = {
        "metadata": {"namespace": "ns"},
        "spec": {
            "podSelector": {"matchExpressions": [{"key": "app", "operator": "In", "values": ["b"]}]},
            "ingress": [{"from": [{"podSelector": {}}]}],
        },
    }
    assert not connection_allowed([deny, egress], a, b, 80)  # b's ingress still isolated
    assert connection_allowed([deny, egress, ingress], a, b, 80)
    assert not connection_allowed([deny, egress, ingress], a, b, 81)
    assert not connection_allowed([deny, egress, ingress], b, a, 80)
    assert not connection_allowed([deny, egress, ingress], pod("other", {"app": "a"}), b, 80)


def _containers(pod_spec: dict) -> list[dict]:
    return [*pod_spec.get("initContainers", []), *pod_spec["containers"]]


def _secrets_of(volume: dict) -> list[str]:
    """The Secrets a volume shows its pod (a secret volume, or the secret sources of a projected one)."""
    if "secret" in volume:
        return [volume["secret"]["secretName"]]
    return [source["secret"]["name"] for source in volume.get("projected", {}).get("sources", []) if "secret" in source]


@pytest.mark.parametrize("overlay", K8S_OVERLAYS)
def test_k8s_pods_are_hardened_and_read_token_keys_from_mounted_files(overlay: str) -> None:
    objects = overlay_objects(overlay)
    config = next(
        d for d in objects if d["kind"] == "ConfigMap" and d["metadata"]["name"].startswith("platform-config")
    )
    # No pod fetches the key set over the network: it is a mounted file.
    assert config["data"]["JWKS_URL"] == ""
    public_file = config["data"]["JWT_PUBLIC_KEYS_FILE"]
    for doc in objects:
        if doc["kind"] != "Deployment":
            continue
        name, spec = doc["metadata"]["name"], doc["spec"]["template"]["spec"]
        pod_security = spec.get("securityContext", {})
        assert spec.get("automountServiceAccountToken") is False, name
        assert pod_security.get("seccompProfile") == {"type": "RuntimeDefault"}, name
        volumes = {v["name"]: v for v in spec.get("volumes", [])}
        for container in _containers(spec):
            where = f"{overlay}: {name}/{container['name']}"
            security = {**pod_security, **container.get("securityContext", {})}
            assert security.get("runAsNonRoot") is True and security.get("runAsUser", 0) > 0, where
            assert security.get("readOnlyRootFilesystem") is True, where
            assert security.get("allowPrivilegeEscalation") is False, where
            assert security.get("capabilities", {}).get("drop") == ["ALL"], where
            assert not security.get("privileged") and not security.get("capabilities", {}).get("add"), where
            env = {e["name"] for e in container.get("env", [])}
            assert not env & {"JWT_PRIVATE_KEY", "JWT_PUBLIC_KEYS", "JWKS_URL"}, where
            if doc["metadata"]["labels"].get("app.kubernetes.io/name") not in SERVICES:
                continue
            mounts = {m["mountPath"]: m for m in container.get("volumeMounts", [])}
            public = mounts[str(Path(public_file).parent)]
            assert public["readOnly"] and volumes[public["name"]]["configMap"]["name"] == "jwt-public-keys", where
            mounted = [s for m in mounts.values() for s in _secrets_of(volumes[m["name"]])]
            service = doc["metadata"]["labels"]["app.kubernetes.io/name"]
            # Each service holds its own service key and no other's (servicekit.service_identity).
            keys = mounts[config["data"]["SERVICE_KEYS_DIR"]]
            assert keys["readOnly"] and _secrets_of(volumes[keys["name"]]) == [f"{service}-service-key"], where
            signing = [secret for secret in mounted if not secret.endswith("-service-key")]
            if name.startswith("polls"):
                file_env = {"name": "JWT_PRIVATE_KEY_FILE", "value": "/etc/polls-platform/jwt-signing/jwt_private.pem"}
                assert file_env in container["env"] and signing == ["jwt-signing-key"], where
            else:
                assert not signing, f"{where}: only the issuer holds the signing key"


def checkov_python() -> Path:
    """The checkov tool virtualenv (requirements/checkov.txt), created on first use; its python.

    Outside the tree (CI clones afresh; the tool does not change with the code), keyed by the
    requirements file's hash: ``$CHECKOV_VENV`` or ``~/.cache/polls-platform/checkov-<hash>``.
    """
    requirements = REPO / "requirements" / "checkov.txt"
    digest = hashlib.sha256(requirements.read_bytes()).hexdigest()[:16]
    cache = Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache")
    venv = Path(os.environ.get("CHECKOV_VENV") or cache / "polls-platform" / f"checkov-{digest}")
    python, marker = venv / "bin" / "python", venv / ".installed"
    if marker.is_file():
        return python
    venv.parent.mkdir(parents=True, exist_ok=True)
    with open(venv.parent / f"{venv.name}.lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        if not marker.is_file():
            subprocess.run([sys.executable, "-m", "venv", "--clear", str(venv)], check=True, timeout=120)
            pip = [str(python), "-m", "pip", "install", "--disable-pip-version-check", "-q", "-r", str(requirements)]
            installed = subprocess.run(pip, capture_output=True, text=True, timeout=900, check=False)
            assert installed.returncode == 0, f"installing checkov failed:\n{installed.stdout}{installed.stderr}"
            marker.write_text(digest + "\n")
    return python


@dataclass(frozen=True)
class CheckovFinding:
    check: str
    resource: str  # checkov's id: Kind.namespace.name
    file: str


def checkov_findings(directory: Path) -> tuple[list[CheckovFinding], dict]:
    """Every failed check of checkov's kubernetes framework on the YAML files in ``directory``; the summary."""
    python = checkov_python()
    result = run(
        python, "-m", "checkov.main", "--framework", "kubernetes", "--directory", directory,
        "--output", "json", "--quiet", "--compact", "--skip-download",
        cwd=directory, timeout=300,
    )  # fmt: skip
    assert result.returncode in (0, 1) and result.stdout.strip(), result.stderr[-3000:]
    report = json.loads(result.stdout)
    report = report[0] if isinstance(report, list) else report
    if "results" not in report:  # nothing to scan: checkov prints an empty summary
        return [], report.get("summary", report)
    failed = [
        CheckovFinding(f["check_id"], f["resource"], Path(f["file_path"]).name)
        for f in report["results"]["failed_checks"]
    ]
    return failed, report["summary"]


def checkov_skips() -> list[dict]:
    entries = yaml.safe_load((SECURITY / "checkov-skips.yaml").read_text())
    for entry in entries:
        assert set(entry) == {"check", "title", "resources", "reason"}, entry
        assert re.fullmatch(r"CKV2?_K8S_\d+", entry["check"]) and entry["resources"], entry
        assert len(entry["reason"].split()) >= 12, f"{entry['check']}: say why it does not apply"
    assert len({e["check"] for e in entries}) == len(entries), "one entry per check id"
    return entries


def unreviewed_checkov(findings: list[CheckovFinding], skips: list[dict]) -> tuple[list[str], list[str]]:
    """(findings no entry covers, entries that cover nothing)."""

    def covers(entry: dict, finding: CheckovFinding) -> bool:
        return entry["check"] == finding.check and any(
            fnmatch.fnmatchcase(finding.resource, pattern) for pattern in entry["resources"]
        )

    used: set[str] = set()
    unreviewed = set()
    for finding in findings:
        entry = next((e for e in skips if covers(e, finding)), None)
        if entry is None:
            unreviewed.add(f"{finding.file}: {finding.check} {finding.resource}")
        else:
            used.add(entry["check"])
    return sorted(unreviewed), sorted(e["check"] for e in skips if e["check"] not in used)


def test_scan_k8s_checkov_finds_nothing_unreviewed(tmp_path: Path) -> None:
    for overlay in K8S_OVERLAYS:
        (tmp_path / f"{overlay}.yaml").write_text(rendered_overlay(overlay))
    findings, summary = checkov_findings(tmp_path)
    assert summary["parsing_errors"] == 0 and summary["resource_count"] > 250, summary
    assert {f.file for f in findings} == {f"{overlay}.yaml" for overlay in K8S_OVERLAYS}
    unreviewed, unused = unreviewed_checkov(findings, checkov_skips())
    assert not unreviewed, "fix these or review them in security/checkov-skips.yaml:\n" + "\n".join(unreviewed)
    assert not unused, f"security/checkov-skips.yaml entries that match nothing (remove them): {unused}"


def test_scan_k8s_checkov_reports_a_planted_finding(tmp_path: Path) -> None:
    deployment = next(
        d for d in overlay_objects("production") if d["kind"] == "Deployment" and d["metadata"]["name"] == "votes"
    )
    container = deployment["spec"]["template"]["spec"]["containers"][0]
    container["securityContext"] = {"privileged": True, "capabilities": {"add": ["NET_ADMIN"]}}
    (tmp_path / "planted.yaml").write_text(yaml.safe_dump(deployment))
    findings, _ = checkov_findings(tmp_path)
    unreviewed, _ = unreviewed_checkov(findings, checkov_skips())
    for check in ("CKV_K8S_16", "CKV_K8S_20", "CKV_K8S_22", "CKV_K8S_28"):  # privileged, escalation, rw root, caps
        assert f"planted.yaml: {check} Deployment.polls.votes" in unreviewed, unreviewed
    # An entry for a check nothing fails is reported as unused.
    stale = {"check": "CKV_K8S_1", "title": "t", "resources": ["*"], "reason": "r"}
    assert unreviewed_checkov(findings, [stale])[1] == ["CKV_K8S_1"]


# --- Scanners: bandit ----------------------------------------------------------------------------


def bandit_findings(*targets: str | Path, cwd: Path = REPO) -> Counter[tuple[str, str]]:
    """(file, test id) -> number of findings of bandit with security/bandit.yaml, every severity."""
    result = run(BIN / "bandit", "-q", "-c", SECURITY / "bandit.yaml", "-f", "json", "-r", *targets, cwd=cwd)
    report = json.loads(result.stdout)
    assert result.returncode in (0, 1) and not report["errors"], result.stderr or report["errors"]
    return Counter((str(Path(r["filename"])), r["test_id"]) for r in report["results"])


def bandit_allowlist() -> dict[tuple[str, str], int]:
    entries = yaml.safe_load((SECURITY / "bandit-allowlist.yaml").read_text())
    allowed = {}
    for entry in entries:
        assert set(entry) == {"file", "test", "count", "reason"}, entry
        assert len(entry["reason"]) >= 20, f"{entry['file']} {entry['test']}: say why it is safe"
        allowed[(entry["file"], entry["test"])] = entry["count"]
    return allowed


def unreviewed_bandit(findings: Counter[tuple[str, str]], allowed: dict[tuple[str, str], int]) -> list[str]:
    problems = [
        f"{file}: {count} x {test}, reviewed {allowed.get((file, test), 0)}"
        for (file, test), count in sorted(findings.items())
        if allowed.get((file, test)) != count
    ]
    problems += [
        f"{file} {test}: allow-list entry matches nothing" for file, test in allowed if (file, test) not in findings
    ]
    return problems


def test_scan_bandit_finds_nothing_unreviewed() -> None:
    problems = unreviewed_bandit(bandit_findings(*BANDIT_TARGETS), bandit_allowlist())
    assert not problems, "fix the code or review the finding in security/bandit-allowlist.yaml:\n" + "\n".join(problems)


def test_scan_bandit_reports_a_planted_finding(tmp_path: Path) -> None:
    (tmp_path / "planted.py").write_text(
        "import subprocess\n\n\ndef run(command):\n    subprocess.call(command, shell=True)\n"
    )
    findings = bandit_findings("planted.py", cwd=tmp_path)
    assert findings[("planted.py", "B602")] == 1, findings
    assert any("B602" in p for p in unreviewed_bandit(findings, bandit_allowlist()))


# --- Scanners: secrets ---------------------------------------------------------------------------

BASELINE_FILE = "security/secrets.baseline"


def repository_files() -> list[str]:
    """Tracked files and new ones git does not ignore (what the next commit can hold)."""
    listed = run("git", "-c", f"safe.directory={REPO}", "ls-files", "-z", "--cached", "--others", "--exclude-standard")
    assert listed.returncode == 0, listed.stderr
    return sorted({f for f in listed.stdout.split("\0") if f and f != BASELINE_FILE and (REPO / f).is_file()})


def unreviewed_secrets(files: list[str]) -> tuple[list[str], list[str]]:
    """(secrets not in the baseline, baseline entries nobody audited) for ``files``, relative to REPO.

    The baseline's plugins and filters (including its excluded files) configure the scan, as
    ``detect-secrets-hook --baseline`` does; matching ignores line numbers, so moved code stays reviewed.
    """
    from detect_secrets import SecretsCollection
    from detect_secrets.core import baseline

    # Relative names, as in the baseline and its exclusion patterns: scan from the repository root.
    with contextlib.chdir(REPO):
        raw = baseline.load_from_file(BASELINE_FILE)
        reviewed = baseline.load(raw, BASELINE_FILE)
        found = SecretsCollection()
        for name in files:  # one process: scan_files() would fork the test session (threads and all)
            found.scan_file(name)
    new = [f"{name}:{secret.line_number} {secret.type}" for name, secret in found - reviewed]
    unaudited = [
        f"{name}:{item['line_number']} {item['type']}"
        for name, items in raw["results"].items()
        for item in items
        if item.get("is_secret") is not False
    ]
    return new, unaudited


def test_scan_secrets_finds_nothing_unreviewed() -> None:
    new, unaudited = unreviewed_secrets(repository_files())
    assert not new, "remove the secret, or after review add it to the baseline (docs/delivery.md):\n" + "\n".join(new)
    assert not unaudited, (
        "audit these baseline entries (detect-secrets audit security/secrets.baseline):\n" + "\n".join(unaudited)
    )


def test_scan_secrets_finds_a_planted_secret(tmp_path: Path) -> None:
    # Built at run time so this file itself holds no secret.
    key_id = "AKIA" + "".join(secrets.choice("ABCDEFGHIJKLMNOPQRSTUVWXYZ234567") for _ in range(16))
    planted = tmp_path / "settings_local.py"
    planted.write_text(f'AWS_ACCESS_KEY_ID = "{key_id}"\n')
    new, _ = unreviewed_secrets([str(planted)])
    assert any("AWS Access Key" in line for line in new), new


# --- Scanners: SBOM ------------------------------------------------------------------------------


def cyclonedx_errors(document: str) -> str | None:
    """The CycloneDX schema's verdict on a JSON document (None: valid)."""
    from cyclonedx.schema import SchemaVersion
    from cyclonedx.validation.json import JsonStrictValidator

    version = json.loads(document).get("specVersion", "")
    error = JsonStrictValidator(SchemaVersion.from_version(version)).validate_str(document)
    return None if error is None else str(error)


def test_scan_sbom_lists_the_pinned_requirements_as_valid_cyclonedx(tmp_path: Path) -> None:
    out = tmp_path / "sbom-polls.cdx.json"
    made = run(BIN / "cyclonedx-py", "requirements", "--no-validate", "requirements/polls.txt", "-o", out)
    assert made.returncode == 0, made.stderr
    document = out.read_text()
    assert cyclonedx_errors(document) is None
    bom = json.loads(document)
    assert bom["bomFormat"] == "CycloneDX"
    components = {c["name"].lower(): c for c in bom["components"]}
    pinned = re.search(r"^Django==(\S+)$", (REPO / "requirements" / "base.txt").read_text(), re.M).group(1)
    assert components["django"]["version"] == pinned
    assert components["django"]["purl"] == f"pkg:pypi/django@{pinned}"
    assert "djangorestframework-simplejwt" in components  # polls.txt's own pin, beside base.txt's
    # The validator is not a rubber stamp: a component without a name is refused.
    del bom["components"][0]["name"]
    assert cyclonedx_errors(json.dumps(bom)) is not None


# --- Allow-lists of the scanners that need a network (Trivy, pip-audit) --------------------------

MAX_EXCEPTION_DAYS = 90


def trivyignore_problems(data: dict, today: dt.date) -> list[str]:
    problems = []
    for entry in data.get("vulnerabilities") or []:
        expires = entry.get("expired_at")
        if not entry.get("id") or len(entry.get("statement", "")) < 20:
            problems.append(f"{entry}: needs an id and a statement saying why it does not apply")
        if not isinstance(expires, dt.date) or not today < expires <= today + dt.timedelta(MAX_EXCEPTION_DAYS):
            problems.append(f"{entry.get('id')}: expired_at must lie within {MAX_EXCEPTION_DAYS} days from today")
    return problems


def pip_audit_ignore_problems(text: str, today: dt.date) -> list[str]:
    problems = []
    for line in text.splitlines():
        if not line.strip() or line.startswith("#"):
            continue
        match = re.fullmatch(r"([A-Z]+-[A-Za-z0-9-]+)\s+(\d{4}-\d{2}-\d{2})\s+(.{20,})", line.strip())
        if not match:
            problems.append(f"{line!r}: expected ID  EXPIRES  REASON")
        elif not today < dt.date.fromisoformat(match[2]) <= today + dt.timedelta(MAX_EXCEPTION_DAYS):
            problems.append(f"{match[1]}: expires {match[2]}, must lie within {MAX_EXCEPTION_DAYS} days from today")
    return problems


def test_scan_exceptions_for_trivy_and_pip_audit_are_reviewed_and_expire() -> None:
    today = dt.date.today()
    assert trivyignore_problems(yaml.safe_load((SECURITY / "trivyignore.yaml").read_text()), today) == []
    assert pip_audit_ignore_problems((SECURITY / "pip-audit-ignore.txt").read_text(), today) == []
    # The rules bite: no reason, a date past or too far ahead.
    soon, late = today + dt.timedelta(30), today + dt.timedelta(400)
    assert trivyignore_problems({"vulnerabilities": [{"id": "CVE-2099-1", "expired_at": soon}]}, today)
    assert trivyignore_problems(
        {"vulnerabilities": [{"id": "CVE-2099-1", "statement": "x" * 30, "expired_at": late}]}, today
    )
    assert not trivyignore_problems(
        {"vulnerabilities": [{"id": "CVE-2099-1", "statement": "x" * 30, "expired_at": soon}]}, today
    )
    assert pip_audit_ignore_problems("GHSA-aaaa-bbbb-cccc\n", today)
    assert pip_audit_ignore_problems(
        f"GHSA-aaaa-bbbb-cccc  {today - dt.timedelta(1)}  the parser is never called here\n", today
    )
    assert not pip_audit_ignore_problems(f"GHSA-aaaa-bbbb-cccc  {soon}  the parser is never called here\n", today)
