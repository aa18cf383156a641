"""A real Prometheus (Debian's package) scrapes the session's test stack and evaluates the platform's rules.

One test, in steps (the budget is ~40 s): Prometheus, prometheus-nginx-exporter (the gateway's
``/stub_status``) and prometheus-postgres-exporter (the stack's PostgreSQL) are started on
private ports with a 1 s scrape and evaluation interval, together with RabbitMQ's prometheus plugin
(``:15692``, enabled by scripts/infra.sh). Then:

1. every target is up, and every metric ops/prometheus/metrics.txt marks ``always`` is in Prometheus
   (the list the dashboards are checked against offline: tests/ops/test_prometheus_rules.py);
2. a vote through the gateway moves the vote counter (and the relay's published counter), and a
   refused token moves ``auth_failures_total``;
3. with choice_service's Celery worker stopped, a vote leaves its event waiting in ``choices.events``
   and ``EventConsumerLag`` fires for choices; the worker is started again and the queue drains,
   leaving the stack as it was found.

Prometheus and the exporters are stopped by PID at the end.
"""

from __future__ import annotations

import re
import shutil
import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest
import requests
import yaml

from scripts.loadgen import Platform, VoteClient, database_url, projection, wait_for
from scripts.platform_stack import Stack, free_port

pytestmark = pytest.mark.stack

REPO = Path(__file__).resolve().parents[2]
RULES = REPO / "ops" / "prometheus" / "rules" / "platform.yml"
CATALOGUE = REPO / "ops" / "prometheus" / "metrics.txt"
RABBITMQ_METRICS = "127.0.0.1:15692"


def always_exported() -> set[str]:
    """Names ops/prometheus/metrics.txt says every deployment exports (``<name> <source> always``)."""
    names = set()
    for line in CATALOGUE.read_text().splitlines():
        fields = line.split("#", 1)[0].split()
        if len(fields) == 3 and fields[2] == "always":
            names.add(fields[0])
    return names


def test_rules_for_the_test_stack(path: Path) -> None:
    """The platform's rules with the consumer-lag alert made fast: the real rule waits 3 minutes (``for``)
    and judges "nothing consumed" over 2 minutes; here ``for: 1s`` and a 10 s window (5 scrapes) keep the
    same expression within the test budget."""
    groups = yaml.safe_load(RULES.read_text())
    for group in groups["groups"]:
        for rule in group["rules"]:
            if rule.get("alert") == "EventConsumerLag":
                rule["for"] = "1s"
                rule["expr"] = rule["expr"].replace("[2m]", "[10s]")
    path.write_text(yaml.safe_dump(groups, sort_keys=False))


test_rules_for_the_test_stack.__test__ = False  # a helper


class Prometheus:
    """Prometheus plus the two exporters, each a child process of this test (stopped by PID)."""

    def __init__(self, stack: Stack, workdir: Path):
        self.stack = stack
        self.workdir = workdir
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.processes: list[subprocess.Popen] = []

    def _spawn(self, name: str, command: list[str], env: dict[str, str] | None = None) -> None:
        log = open(self.workdir / f"{name}.log", "wb")  # noqa: SIM115 - closed with the process
        self.processes.append(subprocess.Popen(command, stdout=log, stderr=subprocess.STDOUT, env=env))

    def start(self) -> Prometheus:
        nginx_port, postgres_port = free_port(), free_port()
        gateway = self.stack.gateway_url.rstrip("/")
        self._spawn(
            "nginx-exporter",
            [
                "prometheus-nginx-exporter",
                f"-nginx.scrape-uri={gateway}/stub_status",
                f"-web.listen-address=127.0.0.1:{nginx_port}",
            ],
        )
        # One connection per server: the three stack databases share this machine's PostgreSQL, whose
        # pg_stat_database covers them all (several DSNs of one server would export duplicate series).
        self._spawn(
            "postgres-exporter",
            ["prometheus-postgres-exporter", f"--web.listen-address=127.0.0.1:{postgres_port}"],
            env={"DATA_SOURCE_NAME": database_url(self.stack, "VOTE_DATABASE_URL") + "?sslmode=disable"},
        )
        rules = self.workdir / "rules.yml"
        test_rules_for_the_test_stack(rules)
        jobs = {
            **{s: f"127.0.0.1:{self.stack.ports[s]}" for s in ("polls", "choices", "votes")},
            "gateway": f"127.0.0.1:{nginx_port}",
            "postgres": f"127.0.0.1:{postgres_port}",
            "rabbitmq": RABBITMQ_METRICS,
        }
        # Every 2 s (a loaded machine may need more than 1 s for a scrape); RabbitMQ's node-wide metrics
        # are slower to produce and change nothing the test waits for: every 5 s.
        slow = {"rabbitmq": {"scrape_interval": "5s", "scrape_timeout": "5s"}}
        config = {
            "global": {"scrape_interval": "2s", "evaluation_interval": "1s", "scrape_timeout": "2s"},
            "rule_files": [str(rules)],
            "scrape_configs": [
                {"job_name": job, "static_configs": [{"targets": [target]}], **slow.get(job, {})}
                for job, target in jobs.items()
            ],
        }
        (self.workdir / "prometheus.yml").write_text(yaml.safe_dump(config))
        self._spawn(
            "prometheus",
            [
                "prometheus",
                f"--config.file={self.workdir / 'prometheus.yml'}",
                f"--storage.tsdb.path={self.workdir / 'data'}",
                f"--web.listen-address=127.0.0.1:{self.port}",
            ],
        )
        wait_for("prometheus ready", lambda: self._get("/-/ready") is not None, timeout=15)
        return self

    def stop(self) -> None:
        for proc in self.processes:
            proc.terminate()
        for proc in self.processes:
            try:
                proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()

    def _get(self, path: str, **params: str) -> dict | None:
        try:
            response = requests.get(self.url + path, params=params, timeout=2)
        except requests.RequestException:
            return None
        if response.status_code != 200:
            return None
        return response.json() if "json" in response.headers.get("Content-Type", "") else {}

    def query(self, expr: str) -> float | None:
        """The value of an instant query with one (or no) resulting sample."""
        body = self._get("/api/v1/query", query=expr)
        result = (body or {}).get("data", {}).get("result", [])
        return float(result[0]["value"][1]) if result else None

    def targets(self) -> dict[str, str]:
        """``{job: "up" | "down: <last error>" | "unknown"}``."""
        body = self._get("/api/v1/targets") or {}
        return {
            t["labels"]["job"]: t["health"] if t["health"] != "down" else f"down: {t['lastError']}"
            for t in body.get("data", {}).get("activeTargets", [])
        }

    def names(self) -> set[str]:
        return set((self._get("/api/v1/label/__name__/values") or {}).get("data", []))

    def firing(self, alert: str) -> list[dict]:
        alerts = (self._get("/api/v1/alerts") or {}).get("data", {}).get("alerts", [])
        return [a for a in alerts if a["labels"].get("alertname") == alert and a["state"] == "firing"]


@pytest.fixture
def prometheus(stack: Stack, tmp_path: Path) -> Iterator[Prometheus]:
    for binary in ("prometheus", "prometheus-nginx-exporter", "prometheus-postgres-exporter"):
        assert shutil.which(binary), f"{binary} is missing: run `bash scripts/infra.sh metrics`"
    server = Prometheus(stack, tmp_path)
    try:
        yield server.start()
    finally:
        server.stop()


def test_prometheus_scrapes_the_stack_and_fires_the_consumer_lag_alert(stack: Stack, prometheus: Prometheus) -> None:
    jobs = {"polls", "choices", "votes", "gateway", "postgres", "rabbitmq"}
    # 1. every target up; every metric the catalogue promises is there
    targets: dict[str, str] = {}

    def all_up() -> bool:
        targets.update(prometheus.targets())
        return targets.keys() == jobs and set(targets.values()) == {"up"}

    try:
        wait_for("every target up", all_up, timeout=30)
    except AssertionError:
        raise AssertionError(f"not every target is up: {targets}") from None
    platform = Platform(
        gateway_url=stack.gateway_url, run_dir=stack.run_dir, owner_id=930_001, votes_url=stack.service_url("votes")
    )
    poll = platform.create_polls(1, choices=2, prefix="Prometheus")[0]
    platform.wait_warm([poll])

    # 2. a vote moves the vote counter and the relay's counter; a refused token is counted
    votes = 'sum(http_requests_total{service="votes", method="POST", status="201"}) or vector(0)'
    published = 'sum(events_published_total{service="votes", type="vote.cast"}) or vector(0)'
    before_votes, before_published = prometheus.query(votes), prometheus.query(published)
    with requests.Session() as session:
        cast = VoteClient(platform, session, user=930_101).cast(poll.id, poll.choices[0])
        assert cast.status == 201, cast
        refused = session.get(stack.gateway_url + "/api/v1/votes/", headers={"Authorization": "Bearer x.y.z"})
        assert refused.status_code == 401
    wait_for("the vote counted by Prometheus", lambda: prometheus.query(votes) >= before_votes + 1, timeout=10)
    wait_for("the vote.cast event published", lambda: prometheus.query(published) >= before_published + 1, timeout=10)
    wait_for(
        "the refused token counted",
        lambda: prometheus.query('sum(auth_failures_total{service="votes", reason="malformed"})'),
        timeout=10,
    )
    missing = always_exported() - prometheus.names()
    assert not missing, f"metrics promised by ops/prometheus/metrics.txt but not exported: {sorted(missing)}"
    assert not prometheus.firing("EventConsumerLag"), "consumer lag alert firing before the consumer stopped"

    # 3. choice_service's consumer stopped: its queue fills, nothing is consumed, the alert fires
    stack.stop_process("choices.worker")
    try:
        with requests.Session() as session:
            cast = VoteClient(platform, session, user=930_102).cast(poll.id, poll.choices[1])
            assert cast.status == 201, cast
        waiting = 'max(events_queue_messages{service="choices"})'
        wait_for("the vote event waiting in choices.events", lambda: (prometheus.query(waiting) or 0) > 0, timeout=10)
        alerts = wait_for("EventConsumerLag firing", lambda: prometheus.firing("EventConsumerLag"), timeout=20)
        assert {a["labels"]["service"] for a in alerts} == {"choices"}, alerts
        assert re.search(r"docs/runbooks\.md#eventconsumerlag$", alerts[0]["annotations"]["runbook_url"])
    finally:
        stack.start_process("choices.worker", wait=True, timeout=90)
    wait_for("choices.events drained", lambda: prometheus.query(waiting) == 0, timeout=30)
    wait_for("EventConsumerLag resolved", lambda: not prometheus.firing("EventConsumerLag"), timeout=20)
    # choice_service applied the vote made while its worker was stopped
    wait_for("choice_service's projection caught up", lambda: len(projection(stack, [poll.id])) == 2, timeout=15)
