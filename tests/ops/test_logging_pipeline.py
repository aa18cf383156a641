"""The compose log pipeline's configuration (ops/logging/), checked offline against what we really log.

Filebeat reads Docker's log files and decodes our ECS JSON lines; Elasticsearch stores them; Kibana
shows them through one data view. These checks need no container: the YAML parses, Filebeat's input,
output and Kibana endpoint point at the compose services that exist (and its config and the Docker log
folder are mounted where it reads them), and every field the pipeline or the README's Kibana query
relies on is in the lines the services (``servicekit.logging.EcsFormatter``) and the gateway
(``log_format gateway_json``) write.
"""

from __future__ import annotations

import json
import logging
import re
import sys
from pathlib import Path
from urllib.parse import urlsplit

import yaml
from opentelemetry.sdk.trace import TracerProvider

REPO = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(REPO / "scripts"))
import gateway  # noqa: E402

from servicekit.logging import EcsFormatter, request_id_var  # noqa: E402
from servicekit.testing import ecs_fields  # noqa: E402

LOGGING = REPO / "ops" / "logging"
# Fields every line must have and the ones the README tells operators to search by in Kibana.
REQUIRED = {"@timestamp", "log.level", "message", "ecs.version", "log.logger", "service.name"}
SEARCHED = {"trace.id", "http.request.id", "event.duration", "http.response.status_code", "url.path"}
ENV_DEFAULT = re.compile(r"^\$\{[A-Z_]+:(.+)\}$")  # Filebeat's ${NAME:default}


def filebeat() -> dict:
    return yaml.safe_load((LOGGING / "filebeat.yml").read_text())


def compose() -> dict:
    return yaml.safe_load((REPO / "docker-compose.yml").read_text())


def default_of(value: str) -> str:
    match = ENV_DEFAULT.match(value)
    return match.group(1) if match else value


def gateway_line(tmp_path: Path) -> dict:
    """One access line as nginx writes it: the rendered log_format with sample values for its variables."""
    conf = gateway.write_local(run_dir=tmp_path, port=18999, polls=18991, choices=18992, votes=18993).read_text()
    block = conf[conf.index("log_format gateway_json escape=json") :]
    block = block[: block.index("';") + 2]
    template = "".join(re.findall(r"'([^']*)'", block))
    numbers = {"status": "201", "body_bytes_sent": "17", "request_duration_ns": "2000000"}
    line = re.sub(r"\$(\w+)", lambda m: numbers.get(m.group(1), f"sample-{m.group(1)}"), template)
    return ecs_fields(json.loads(line))


def service_line() -> dict:
    """The access line of a service request, as EcsFormatter writes it."""
    record = logging.makeLogRecord(
        {
            "name": "servicekit.access",
            "levelno": logging.INFO,
            "levelname": "INFO",
            "msg": "%s %s %s",
            "args": ("POST", "/api/v1/votes/", 201),
            "http": {"request": {"method": "POST"}, "response": {"status_code": 201}},
            "url": {"path": "/api/v1/votes/"},
            "event": {"dataset": "votes.access", "duration": 2_000_000},
        }
    )
    token = request_id_var.set("r-1")
    try:
        with TracerProvider().get_tracer("test").start_as_current_span("request"):  # a private provider
            text = EcsFormatter(service="votes", version="1", environment="test").format(record)
    finally:
        request_id_var.reset(token)
    return ecs_fields(json.loads(text))


def test_filebeat_reads_docker_logs_and_decodes_ecs_json_at_the_root() -> None:
    (source,) = filebeat()["filebeat.inputs"]
    assert source["type"] == "filestream" and source["id"]
    assert source["paths"] == ["/var/lib/docker/containers/*/*-json.log"]
    parsers = {name: options for parser in source["parsers"] for name, options in parser.items()}
    assert list(parsers) == ["container", "ndjson"], "unwrap Docker's envelope first, then decode our line"
    assert parsers["container"]["format"] == "docker" and parsers["container"]["stream"] == "all"
    ndjson = parsers["ndjson"]
    assert ndjson["target"] == "" and ndjson["overwrite_keys"] and ndjson["expand_keys"]
    assert ndjson["message_key"] == "message"


def test_filebeat_ships_to_the_compose_elasticsearch_and_kibana() -> None:
    config, services = filebeat(), compose()["services"]
    for setting, service, port in (
        (config["output.elasticsearch"]["hosts"][0], "elasticsearch", 9200),
        (config["setup.kibana"]["host"], "kibana", 5601),
    ):
        url = urlsplit(default_of(setting))
        assert (url.hostname, url.port) == (service, port), setting
        assert services[service]["profiles"] == ["observability"]
        published = services[service]["ports"][0]
        assert published.startswith("127.0.0.1:") and published.endswith(f":{port}"), "loopback only"
    beat = services["filebeat"]
    assert beat["profiles"] == ["observability"]
    assert beat["environment"]["ELASTICSEARCH_HOSTS"] == "http://elasticsearch:9200"
    mounts = {volume.split(":")[1]: volume.split(":")[0] for volume in beat["volumes"]}
    assert mounts["/usr/share/filebeat/filebeat.yml"] == "./ops/logging/filebeat.yml"
    assert mounts["/var/lib/docker/containers"] == "/var/lib/docker/containers"
    assert "/var/run/docker.sock" in mounts, "add_docker_metadata needs the socket"
    assert config["processors"][0]["add_docker_metadata"]["host"] == "unix:///var/run/docker.sock"
    # The pipeline's own containers are dropped by their compose service names, which must exist.
    dropped = [
        c["equals"]["container.labels.com_docker_compose_service"]
        for c in config["processors"][1]["drop_event"]["when"]["or"]
    ]
    assert set(dropped) == {"elasticsearch", "kibana", "kibana-setup", "filebeat"} <= set(services)
    # The platform's containers are kept, and the gateway's non-JSON lines are recognised by its name.
    assert "gateway" in services and not {"gateway", "polls", "choices", "votes"} & set(dropped)


def test_the_kibana_data_view_covers_filebeats_data_stream() -> None:
    view = json.loads((LOGGING / "kibana-data-view.json").read_text())["data_view"]
    assert view["title"] == "filebeat-*" and view["timeFieldName"] == "@timestamp"
    setup = compose()["services"]["kibana-setup"]
    assert "./ops/logging/kibana-data-view.json:/setup/kibana-data-view.json:ro" in setup["volumes"]
    assert (
        "@/setup/kibana-data-view.json" in setup["command"][0] and "kibana:5601/api/data_views" in setup["command"][0]
    )


def test_services_and_gateway_log_every_field_the_pipeline_and_the_readme_use(tmp_path: Path) -> None:
    config = filebeat()
    referenced = set(re.findall(r"%\{([a-z_.]+)(?:\|\w+)?\}", json.dumps(config)))  # dissect keys
    referenced |= {key for p in config["processors"] if "add_fields" in p for key in p["add_fields"]["fields"]}
    # Fields the pipeline writes for nginx's error lines must be the ones the JSON lines use.
    assert referenced <= REQUIRED | {"process.pid", "process.thread.id", "event.dataset"}
    readme = (REPO / "README.md").read_text()
    for field in ("trace.id", "http.request.id"):
        assert f"{field}:" in readme, f"the README shows how to search by {field}"
    edge, service = gateway_line(tmp_path), service_line()
    for name, line in (("gateway", edge), ("service", service)):
        missing = (REQUIRED | SEARCHED | {"event.dataset", "http.request.method"}) - set(line)
        assert not missing, f"the {name} access line lacks {sorted(missing)}"
        assert isinstance(line["event.duration"], int) and line["event.duration"] == 2_000_000
        assert isinstance(line["http.response.status_code"], int)
        assert str(line["@timestamp"]).startswith("20") or name == "gateway"
        assert line["ecs.version"] == "1.6.0" and line["log.level"] == "info"
    assert {"http.request.id", "trace.id", "url.path", "event.duration"} <= set(edge) & set(service)


def test_filebeats_nginx_error_pattern_matches_nginx_error_lines() -> None:
    (dissect,) = [p["dissect"] for p in filebeat()["processors"] if "dissect" in p]
    pattern = re.compile(dissect["when"]["regexp"]["message"])
    sample = "2026/12/01 17:00:23 [error] 31#31: *1 connect() failed (111: Connection refused) while connecting"
    assert pattern.match(sample) and not pattern.match('{"@timestamp":"2026-12-01T17:00:23+00:00"}')
    # The tokenizer's literal parts, in order, are in the sample: "[", "] ", "#", ": ".
    literals = [part for part in re.split(r"%\{[^}]*\}", dissect["tokenizer"]) if part]
    position = 0
    for literal in literals:
        position = sample.index(literal, position) + len(literal)
