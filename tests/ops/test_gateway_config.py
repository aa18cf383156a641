"""The one gateway template renders for every target and Nginx accepts each rendering (``nginx -t``).

No running stack needed: these check the configuration itself, so a broken route or directive fails
here with Nginx's own message before any end-to-end test runs.
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
from pathlib import Path

import pytest

from scripts import gateway
from scripts.devsecrets import ensure_dev_tls

ROUTES = [
    r"location ~ ^/api/v[123]/polls(/|$)",
    r"location ~ ^/api/v[123]/auth(/|$)",
    "location = /api/v3/",
    "location ^~ /api/docs",
    "location ^~ /.well-known/",
    r"location ~ ^/api/v[123]/choices(/|$)",
    r"location ~ ^/api/v[123]/votes(/|$)",
    r"location ~ ^/api/v[123]/results(/|$)",
    "location ^~ /internal/",
    "location = /healthz",
    *[
        f"location ^~ /{kind}/{svc}/"
        for kind in ("api/schema", "admin", "static")
        for svc in ("polls", "choices", "votes")
    ],
]


def nginx_test(conf: Path, hostnames: list[str]) -> subprocess.CompletedProcess:
    """``nginx -t`` on a container rendering: service hostnames resolve to loopback in a private mount namespace."""
    hosts = conf.parent / "hosts"
    hosts.write_text("127.0.0.1 localhost " + " ".join(hostnames) + "\n")
    # The certificate a container gets mounted: a development one in its place.
    ensure_dev_tls(conf.parent)
    text = conf.read_text()
    for cert, key in gateway.CONTAINER_CERTS.values():
        text = text.replace(cert, str(conf.parent / "secrets" / "gateway.crt"))
        text = text.replace(key, str(conf.parent / "secrets" / "gateway.key"))
    conf.write_text(text)
    nginx = gateway.nginx_binary()
    if os.geteuid() == 0 and shutil.which("unshare"):
        script = f"mount --bind {hosts} /etc/hosts && {nginx} -t -q -e stderr -c {conf}"
        return subprocess.run(["unshare", "-m", "sh", "-c", script], capture_output=True, text=True, check=False)
    # Without root: the same text with the hostnames replaced by loopback.
    text = conf.read_text()
    for name in sorted(hostnames, key=len, reverse=True):
        text = re.sub(rf"\bserver {re.escape(name)}:", "server 127.0.0.1:", text)
    text = text.replace("/tmp/nginx.pid", str(conf.parent / "nginx.pid")).replace(" /tmp/", f" {conf.parent}/")
    local = conf.with_suffix(".local.conf")
    local.write_text(text)
    return subprocess.run([nginx, "-t", "-q", "-e", "stderr", "-c", str(local)], capture_output=True, text=True)


def test_local_rendering_passes_nginx_t(tmp_path: Path) -> None:
    conf = gateway.write_local(run_dir=tmp_path, port=18999, polls=18991, choices=18992, votes=18993)
    text = conf.read_text()
    assert "{{" not in text
    assert "server 127.0.0.1:18991 max_fails=2 fail_timeout=5s;" in text
    assert f"client_body_temp_path {tmp_path.resolve()}/nginx/temp/client_body;" in text
    assert "listen 127.0.0.1:18999" in text
    result = gateway.check(conf)
    assert result.returncode == 0, result.stderr


@pytest.mark.parametrize("target", ["compose", "k8s"])
def test_container_renderings_pass_nginx_t(tmp_path: Path, target: str) -> None:
    text = gateway.render_k8s() if target == "k8s" else gateway.render(gateway.container_values(target=target))
    assert "{{" not in text
    conf = tmp_path / f"{target}.conf"
    conf.write_text(text)
    result = nginx_test(conf, ["polls", "choices", "votes", "polls-canary"])
    assert result.returncode == 0, result.stderr


def rendered(target: str, tmp_path: Path) -> str:
    """The gateway configuration as ``target`` (local, compose or k8s) gets it."""
    if target == "local":
        return gateway.write_local(run_dir=tmp_path, port=1, polls=2, choices=3, votes=4).read_text()
    if target == "k8s":
        return gateway.render_k8s()
    return gateway.render(gateway.container_values(target=target))


@pytest.mark.parametrize("target", ["local", "compose", "k8s"])
def test_every_target_has_the_same_routes_and_limits(tmp_path: Path, target: str) -> None:
    text = rendered(target, tmp_path)
    for route in ROUTES:
        assert route in text, f"{target}: missing {route}"
    assert "client_max_body_size 64k;" in text
    assert 'proxy_set_header Connection "";' in text and "proxy_http_version 1.1;" in text
    assert "proxy_set_header X-Request-ID $req_id;" in text
    assert "default-src 'self'" in text


def test_k8s_rendering_routes_polls_through_the_canary_pool() -> None:
    text = gateway.render_k8s()
    assert "upstream polls_canary" in text
    assert "proxy_pass http://polls;" not in text
    # Every polls location of the template (auth, OAuth, polls, entry point, docs, keys, ...) goes through the pool.
    locations = gateway.TEMPLATE.read_text().count("proxy_pass http://polls;")
    assert locations >= 10 and text.count("proxy_pass http://$polls_pool;") == locations


def test_a_missing_placeholder_value_is_an_error(tmp_path: Path) -> None:
    values = gateway.container_values(target="compose")
    del values["VOTE_SERVERS"]
    with pytest.raises(KeyError, match="VOTE_SERVERS"):
        gateway.render(values)


def test_weights_put_a_second_instance_in_one_upstream(tmp_path: Path) -> None:
    # A release (scripts/release.py): the canary takes a tenth of vote_service's traffic.
    conf = gateway.write_local(
        run_dir=tmp_path, port=18999, polls=18991, choices=18992, votes=18993, weights={"votes": {18993: 90, 19003: 10}}
    )
    text = conf.read_text()
    votes = text[text.index("upstream votes {") : text.index("}", text.index("upstream votes {"))]
    assert "server 127.0.0.1:18993 weight=90 max_fails=2 fail_timeout=5s;" in votes
    assert "server 127.0.0.1:19003 weight=10 max_fails=2 fail_timeout=5s;" in votes
    assert "weight=" not in text.replace(votes, "")  # the other upstreams keep their one server
    assert gateway.check(conf).returncode == 0


def test_web_root_prefers_the_built_client(tmp_path: Path) -> None:
    (tmp_path / "web" / "src").mkdir(parents=True)
    assert gateway.web_root(tmp_path) == tmp_path / "web"
    (tmp_path / "web" / "src" / "index.html").write_text("<!doctype html>")
    assert gateway.web_root(tmp_path) == tmp_path / "web" / "src"
    (tmp_path / "web" / "dist").mkdir()
    (tmp_path / "web" / "dist" / "index.html").write_text("<!doctype html>")
    assert gateway.web_root(tmp_path) == tmp_path / "web" / "dist"


@pytest.mark.parametrize("percent", [0, 12.5, 100])
def test_the_gateway_forwards_or_starts_a_traceparent(tmp_path: Path, percent: float) -> None:
    # $otel_trace_id / $otel_traceparent are defined at http level for proxying and the access log.
    conf = gateway.write_local(
        run_dir=tmp_path, port=18999, polls=18991, choices=18992, votes=18993, trace_sample_percent=percent
    )
    text = conf.read_text()
    assert "proxy_set_header traceparent $otel_traceparent;" in text
    assert "map $otel_traceparent $otel_trace_id {" in text
    assert 'default "00-$request_id-$otel_gateway_span_id-$otel_sampled";' in text
    start = text.index("$otel_sampled {")
    split = text[start : text.index("}", start)]
    expected = {0: ["* 00;"], 12.5: ["12.5% 01;", "* 00;"], 100: ["* 01;"]}[percent]
    assert [line.strip() for line in split.splitlines()[1:] if line.strip()] == expected
    assert gateway.check(conf).returncode == 0
    with pytest.raises(ValueError):
        gateway.trace_sample_split(101)


@pytest.mark.parametrize("target", ["local", "compose", "k8s"])
def test_stub_status_is_served_to_this_host_only(tmp_path: Path, target: str) -> None:
    """prometheus-nginx-exporter reads /stub_status over loopback; nobody else may."""
    text = rendered(target, tmp_path)
    block = re.search(r"location = /stub_status \{(.*?)\}", text, re.S)
    assert block, "no /stub_status location"
    directives = [line.strip() for line in block.group(1).strip().splitlines()]
    assert directives == ["access_log off;", "allow 127.0.0.1;", "allow ::1;", "deny all;", "stub_status;"]
