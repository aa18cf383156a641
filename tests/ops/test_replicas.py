"""Replicas without a platform: how many web instances, their names, ports and metrics folders, the
gateway's upstreams (least_conn, shared zone, passive health, a release's canary share) and compose.

The platform with two replicas and a failover under load is tests/e2e/test_failover.py.
"""

from __future__ import annotations

import os
from pathlib import Path

import pytest
import yaml

from scripts import gateway
from scripts.platform_stack import Stack, StackError, specs
from scripts.platform_stack.cli import UP_REPLICAS
from scripts.platform_stack.common import SERVICES, parse_web_process_name, web_process_name

PORTS = {"polls": 28001, "choices": 28002, "votes": 28003, "gateway": 28080}
NO_REPLICA_ENV: dict[str, str | None] = {
    "SERVICE_REPLICAS": None,
    "POLLS_REPLICAS": None,
    "CHOICE_REPLICAS": None,
    "VOTE_REPLICAS": None,
}


def stack(tmp_path: Path, default_replicas: int = 1, **env: str) -> Stack:
    return Stack(
        tmp_path, env={**NO_REPLICA_ENV, **env}, ports=PORTS, default_replicas=default_replicas, log=lambda m: None
    )


def test_one_instance_unless_told_and_two_for_make_up(tmp_path: Path) -> None:
    assert stack(tmp_path).replicas == {"polls": 1, "choices": 1, "votes": 1}
    assert UP_REPLICAS == 2
    assert stack(tmp_path, default_replicas=UP_REPLICAS).replicas == {"polls": 2, "choices": 2, "votes": 2}


def test_service_replicas_and_the_per_service_override(tmp_path: Path) -> None:
    configured = stack(tmp_path, SERVICE_REPLICAS="3", VOTE_REPLICAS="4")
    assert configured.replicas == {"polls": 3, "choices": 3, "votes": 4}
    assert Stack(tmp_path, env=NO_REPLICA_ENV, ports=PORTS, replicas={"choices": 2}).replicas["choices"] == 2


@pytest.mark.parametrize("value", ["0", "two", "10", "-1"])
def test_a_wrong_replica_count_is_refused_in_one_line(tmp_path: Path, value: str) -> None:
    with pytest.raises(StackError, match=r"CHOICE_REPLICAS/SERVICE_REPLICAS must be a whole number from 1 to 9"):
        stack(tmp_path, CHOICE_REPLICAS=value)


def test_instances_are_named_and_spaced_by_twenty_ports(tmp_path: Path) -> None:
    three = stack(tmp_path, SERVICE_REPLICAS="3")
    assert three.web_instances("votes") == {"votes.web": 28003, "votes.web.2": 28023, "votes.web.3": 28043}
    assert three.service_url("polls", 2) == "http://127.0.0.1:28021"
    assert [web_process_name("choices", n) for n in (1, 2)] == ["choices.web", "choices.web.2"]
    assert parse_web_process_name("choices.web.2") == ("choices", 2)
    assert parse_web_process_name("votes.web") == ("votes", 1)
    assert parse_web_process_name("votes.worker") is None
    assert parse_web_process_name("votes.web.canary") is None  # a release's instance is not a replica


def test_each_instance_binds_its_port_and_counts_its_own_metrics(tmp_path: Path) -> None:
    two = stack(tmp_path, SERVICE_REPLICAS="2")
    votes = next(s for s in SERVICES if s.name == "votes")
    first, second = specs.web_spec(two, votes, 1), specs.web_spec(two, votes, 2)
    assert (first.name, second.name) == ("votes.web", "votes.web.2")
    assert (first.env["WEB_BIND"], second.env["WEB_BIND"]) == ("127.0.0.1:28003", "127.0.0.1:28023")
    assert first.env["PROMETHEUS_MULTIPROC_DIR"] != second.env["PROMETHEUS_MULTIPROC_DIR"]
    assert second.health_url == "http://127.0.0.1:28023/healthz"


def test_every_instance_is_in_the_upstream_with_the_same_weight(tmp_path: Path) -> None:
    two = stack(tmp_path, SERVICE_REPLICAS="2")
    assert specs.upstream_weights(two)["choices"] == {28002: 1, 28022: 1}
    assert gateway.server_lines({"127.0.0.1:28002": 1, "127.0.0.1:28022": 1}) == (
        "        server 127.0.0.1:28002 max_fails=2 fail_timeout=5s;\n"
        "        server 127.0.0.1:28022 max_fails=2 fail_timeout=5s;"
    )


def test_a_release_canary_keeps_its_share_beside_the_replicas(tmp_path: Path) -> None:
    # scripts/release.py asks for {stable port: 90, canary port: 10}: the stable port stands for every
    # instance and the canary's weight grows with their number, so it still takes 10 %.
    two = stack(tmp_path, SERVICE_REPLICAS="2")
    votes = specs.upstream_weights(two, {"votes": {28003: 90, 28013: 10}})["votes"]
    assert votes == {28003: 90, 28023: 90, 28013: 20}
    assert votes[28013] / sum(votes.values()) == pytest.approx(0.10)
    assert specs.upstream_weights(two, {"votes": {28013: 1}})["votes"] == {28013: 2}  # 100 %: the canary alone
    assert specs.upstream_weights(stack(tmp_path), {"votes": {28003: 90, 28013: 10}})["votes"] == {
        28003: 90,
        28013: 10,
    }


def test_the_rendered_upstreams_balance_by_least_connections_and_pass_nginx_t(tmp_path: Path) -> None:
    two = stack(tmp_path, SERVICE_REPLICAS="2")
    conf = gateway.write_local(
        run_dir=tmp_path, port=28080, polls=28001, choices=28002, votes=28003, weights=specs.upstream_weights(two)
    )
    text = conf.read_text()
    for name, ports in (("polls", (28001, 28021)), ("choices", (28002, 28022)), ("votes", (28003, 28023))):
        block = text[text.index(f"upstream {name} {{") : text.index("}", text.index(f"upstream {name} {{"))]
        assert f"zone {name} 64k;" in block and "least_conn;" in block and "keepalive 32;" in block
        # The balancing method comes before keepalive (nginx: otherwise keepalive falls back to round-robin).
        assert block.index("least_conn;") < block.index("keepalive 32;")
        for port in ports:
            assert f"server 127.0.0.1:{port} max_fails=2 fail_timeout=5s;" in block
    result = gateway.check(conf)
    assert result.returncode == 0, result.stderr


@pytest.mark.parametrize("target", ["local", "compose", "k8s"])
def test_a_shed_503_is_never_resent_to_another_instance(tmp_path: Path, target: str) -> None:
    if target == "local":
        text = gateway.write_local(run_dir=tmp_path, port=1, polls=2, choices=3, votes=4).read_text()
    elif target == "k8s":
        text = gateway.render_k8s()
    else:
        text = gateway.render(gateway.container_values(target=target))
    (line,) = [ln.strip() for ln in text.splitlines() if ln.strip().startswith("proxy_next_upstream ")]
    assert line == "proxy_next_upstream error timeout http_502 http_504;"


def test_compose_scales_every_web_service(tmp_path: Path) -> None:
    from tests.ops.test_deploy import COMPOSE_SECRETS, compose_binary, run

    secrets = tmp_path / "compose.env"
    secrets.write_text("".join(f"{name}={value}\n" for name, value in COMPOSE_SECRETS.items()))
    base = {k: v for k, v in os.environ.items() if not k.endswith("REPLICAS")}
    args = [compose_binary(), "-f", "docker-compose.yml", "--env-file", str(secrets), "config"]
    default = run(*args, env=base)
    assert default.returncode == 0, default.stderr
    scaled = run(*args, env={**base, "SERVICE_REPLICAS": "3", "VOTE_REPLICAS": "5"})
    assert scaled.returncode == 0, scaled.stderr
    default_services = yaml.safe_load(default.stdout)["services"]
    scaled_services = yaml.safe_load(scaled.stdout)["services"]
    for name in ("polls", "choices", "votes"):
        assert default_services[name]["deploy"]["replicas"] == 2
        assert "deploy" not in default_services[f"{name}-worker"]  # Celery stays one per service
    assert [scaled_services[n]["deploy"]["replicas"] for n in ("polls", "choices", "votes")] == [3, 3, 5]
