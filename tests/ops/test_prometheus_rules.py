"""Alert rules, scrape configs and Grafana dashboards, checked offline with Debian's promtool (a few seconds).

- ``promtool check rules`` and ``promtool test rules`` (every alert has a unit test in
  ops/prometheus/tests/, firing on its situation), ``promtool check config`` for each scrape config;
- every alert links a runbook anchor that docs/runbooks.md has;
- every Grafana panel query parses (each becomes a recording rule of a temporary rules file that
  ``promtool check rules`` reads) and uses only metrics of ops/prometheus/metrics.txt (the list that
  tests/e2e/test_prometheus.py checks against a real Prometheus scraping the test stack) or
  recording rules of ops/prometheus/rules/.
"""

from __future__ import annotations

import json
import re
import shutil
import subprocess
from pathlib import Path

import pytest
import yaml

REPO = Path(__file__).resolve().parents[2]
PROMETHEUS = REPO / "ops" / "prometheus"
RULE_FILES = sorted((PROMETHEUS / "rules").glob("*.yml"))
RULE_TESTS = sorted((PROMETHEUS / "tests").glob("*.yml"))
DASHBOARDS = sorted((REPO / "ops" / "grafana" / "dashboards").glob("*.json"))
RUNBOOKS = REPO / "docs" / "runbooks.md"

PROMQL_WORDS = {
    "by", "without", "on", "ignoring", "group_left", "group_right", "bool", "offset", "and", "or", "unless",
    "inf", "nan",
}  # fmt: skip


def promtool(*args: str) -> subprocess.CompletedProcess:
    binary = shutil.which("promtool")
    assert binary, "promtool is missing: run `bash scripts/infra.sh metrics` (Debian package prometheus)"
    return subprocess.run([binary, *args], capture_output=True, text=True, check=False, cwd=PROMETHEUS)


def alerts() -> list[dict]:
    return [r for f in RULE_FILES for g in yaml.safe_load(f.read_text())["groups"] for r in g["rules"] if "alert" in r]


def recorded_names() -> set[str]:
    return {
        r["record"]
        for f in RULE_FILES
        for g in yaml.safe_load(f.read_text())["groups"]
        for r in g["rules"]
        if "record" in r
    }


def catalogue() -> set[str]:
    names = set()
    for line in (PROMETHEUS / "metrics.txt").read_text().splitlines():
        fields = line.split("#", 1)[0].split()
        if fields:
            assert len(fields) == 3 and fields[2] in {"always", "on-event"}, f"bad catalogue line: {line!r}"
            names.add(fields[0])
    return names


def metric_names(expr: str) -> set[str]:
    """The metric names a PromQL expression reads (label matchers, strings, ranges, grouping removed)."""
    text = re.sub(r'"(?:\\.|[^"\\])*"', "", expr)
    text = re.sub(r"\{[^}]*\}", " ", text)
    text = re.sub(r"\[[^\]]*\]", " ", text)
    text = re.sub(r"\b(by|without|on|ignoring|group_left|group_right)\s*\([^)]*\)", " ", text)
    names = set(re.findall(r"(?<![\w:.])([A-Za-z_:][\w:]*)\b(?!\s*\()", text))
    return {n for n in names if n.lower() not in PROMQL_WORDS}


def panels(dashboard: dict) -> list[dict]:
    found = []
    for panel in dashboard["panels"]:
        found.append(panel)
        found.extend(panel.get("panels", []))  # rows
    return found


def grafana_to_promql(expr: str) -> str:
    """A panel query as Prometheus sees it once Grafana substituted its variables."""
    return expr.replace("$__rate_interval", "5m").replace("$__interval", "1m").replace("$service", ".*")


def test_rules_load_and_their_unit_tests_pass() -> None:
    checked = promtool("check", "rules", *map(str, RULE_FILES))
    assert checked.returncode == 0, checked.stdout + checked.stderr
    tested = promtool("test", "rules", *map(str, RULE_TESTS))
    assert tested.returncode == 0, tested.stdout + tested.stderr


def test_every_alert_has_a_unit_test_and_a_runbook() -> None:
    tested = set()
    for path in RULE_TESTS:
        for case in yaml.safe_load(path.read_text())["tests"]:
            for check in case.get("alert_rule_test", []):
                if check.get("exp_alerts"):
                    tested.add(check["alertname"])
    anchors = set(re.findall(r'<a id="([a-z0-9-]+)"></a>', RUNBOOKS.read_text()))
    names = {rule["alert"] for rule in alerts()}
    assert {"HighErrorRatio", "VoteLatencyBudgetBurnFast", "VoteLatencyBudgetBurnSlow", "OutboxStalled",
            "EventConsumerLag", "DeadLettersPresent", "CircuitBreakerOpen", "TargetDown", "AuthFailureSpike",
            "RefreshTokenReuse"} <= names  # fmt: skip
    assert names - tested == set(), "alerts never shown firing by a promtool test"
    for rule in alerts():
        url = rule["annotations"]["runbook_url"]
        assert url.split("#")[0].endswith("docs/runbooks.md"), url
        assert url.split("#")[1] in anchors, f"{rule['alert']}: no anchor {url.split('#')[1]!r} in docs/runbooks.md"
        assert rule["labels"]["severity"] in {"page", "ticket"}
        assert {"summary", "description"} <= rule["annotations"].keys()


@pytest.mark.parametrize("config", ["prometheus.yml", "prometheus.compose.yml", "prometheus.k8s.yml"])
def test_scrape_configs_are_valid(config: str) -> None:
    # Container configs name rule files at their mount path: syntax only (rules are checked above).
    args = ["check", "config", config] if config == "prometheus.yml" else ["check", "config", "--syntax-only", config]
    result = promtool(*args)
    assert result.returncode == 0, result.stdout + result.stderr
    jobs = {job["job_name"] for job in yaml.safe_load((PROMETHEUS / config).read_text())["scrape_configs"]}
    expected = {"rabbitmq", "postgres", "polls", "choices", "votes", "gateway"}
    assert jobs == expected


def test_every_dashboard_query_parses_and_uses_exported_metrics(tmp_path: Path) -> None:
    assert {p.stem for p in DASHBOARDS} == {"overview", "pipeline", "security"}
    known = catalogue() | recorded_names()
    rules, unknown = [], []
    for path in DASHBOARDS:
        dashboard = json.loads(path.read_text())
        ids = [panel["id"] for panel in panels(dashboard)]
        assert len(ids) == len(set(ids)), f"{path.name}: duplicate panel ids"
        for panel in panels(dashboard):
            assert panel["datasource"]["uid"] == "prometheus", f"{path.name}: {panel['title']}"
            assert panel["targets"], f"{path.name}: {panel['title']} has no query"
            for target in panel["targets"]:
                expr = grafana_to_promql(target["expr"])
                rules.append({"record": f"dashboard:{path.stem}:{panel['id']}{target['refId'].lower()}", "expr": expr})
                unknown += [f"{path.name} / {panel['title']}: {n}" for n in sorted(metric_names(expr) - known)]
    assert not unknown, "panels use metrics the platform does not export:\n" + "\n".join(unknown)
    rules_file = tmp_path / "dashboards.rules.yml"
    rules_file.write_text(yaml.safe_dump({"groups": [{"name": "dashboards", "rules": rules}]}))
    result = promtool("check", "rules", str(rules_file))
    assert result.returncode == 0, result.stdout + result.stderr


def test_metric_name_extraction() -> None:
    expr = 'sum by (service, le) (rate(http_request_duration_seconds_bucket{route=~"/a|b"}[5m])) / on(x) up offset 1h'
    assert metric_names(expr) == {"http_request_duration_seconds_bucket", "up"}
    assert metric_names("histogram_quantile(0.99, sum(rate(x_bucket[1m]))) > 0.5") == {"x_bucket"}


COMPONENT = REPO / "k8s" / "components" / "observability" / "config"
COMPONENT_COPIES = {
    "prometheus.k8s.yml": PROMETHEUS / "prometheus.k8s.yml",
    "rules/platform.yml": PROMETHEUS / "rules" / "platform.yml",
    "grafana/datasources.yml": REPO / "ops" / "grafana" / "provisioning" / "datasources" / "prometheus.yml",
    "grafana/dashboards.yml": REPO / "ops" / "grafana" / "provisioning" / "dashboards" / "polls-platform.yml",
    **{f"dashboards/{p.name}": p for p in DASHBOARDS},
}


@pytest.mark.parametrize("copy", sorted(COMPONENT_COPIES))
def test_k8s_component_ships_the_current_configs(copy: str) -> None:
    """kustomize reads only inside the component: its config/ must equal ops/ (`make observability-config`)."""
    assert (COMPONENT / copy).read_text() == COMPONENT_COPIES[copy].read_text(), "run `make observability-config`"
