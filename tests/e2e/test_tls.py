"""HTTPS at the edge: TLS 1.3 only (1.2 when configured, never 1.1 or older), HTTP/2 by ALPN, HSTS, redirect.

The session stack's gateway serves HTTPS on its port + 363 with the stack's development certificate
(``RUN_DIR/secrets/gateway.crt``, issued by ``dev-ca.pem``), beside plain HTTP on its own port. The
redirect and TLS 1.2 are off by default, so they are checked on a second gateway rendered from the same
template with them on, in front of the same services (an nginx started for a few seconds).

``openssl s_client`` is the client for the protocol checks. The local OpenSSL does not offer TLS 1.0/1.1
at its default security level, so those probes lower the client's level (``-cipher DEFAULT@SECLEVEL=0``)
and assert that the *server* refused: the client offered the version and received the server's
``protocol version`` alert (70), not a local "no protocols available".
"""

from __future__ import annotations

import json
import shutil
import socket
import subprocess
import time
import uuid
from pathlib import Path

import pytest
import requests

from scripts import gateway as gateway_config
from scripts.platform_stack import free_port

pytestmark = pytest.mark.stack

REFUSED_BY_SERVER = "alert protocol version"  # the server's alert 70, as the client reports it


def hostport(url: str) -> tuple[str, int]:
    host, port = url.split("://", 1)[1].rsplit(":", 1)
    return host, int(port)


def s_client(address: tuple[str, int], ca: Path, *options: str) -> subprocess.CompletedProcess:
    """One TLS handshake with ``openssl s_client`` (no request sent; with h2 the server's first frames are binary)."""
    command = ["openssl", "s_client", "-connect", f"{address[0]}:{address[1]}", "-CAfile", str(ca), *options]
    return subprocess.run(command, input="", capture_output=True, text=True, errors="replace", timeout=15, check=False)


def negotiated(result: subprocess.CompletedProcess) -> str | None:
    """The protocol of a completed handshake ("TLSv1.3"), or None when there was none."""
    for line in result.stdout.splitlines():
        if line.startswith("New, ") and "Cipher is (NONE)" not in line:
            return line.split(",")[1].strip()
    return None


def assert_refused_by_server(result: subprocess.CompletedProcess, version: str) -> None:
    output = result.stdout + result.stderr
    assert negotiated(result) is None, output
    assert "no protocols available" not in output, f"the client never offered {version}: {output}"
    assert f"Protocol  : {version}" in output, output  # what the client proposed
    assert REFUSED_BY_SERVER in output, output


# ----- the session stack's gateway -----------------------------------------------------------------


def test_tls13_is_negotiated_and_the_certificate_verifies_against_the_dev_ca(stack, dev_ca: Path) -> None:
    result = s_client(hostport(stack.gateway_https_url), dev_ca, "-verify_return_error", "-servername", "localhost")
    assert result.returncode == 0, result.stdout + result.stderr
    assert negotiated(result) == "TLSv1.3"
    assert "Verify return code: 0 (ok)" in result.stdout


@pytest.mark.parametrize(("flag", "version"), [("-tls1", "TLSv1"), ("-tls1_1", "TLSv1.1"), ("-tls1_2", "TLSv1.2")])
def test_older_protocols_are_refused_by_the_server(stack, dev_ca: Path, flag: str, version: str) -> None:
    # TLS 1.2 is off unless GATEWAY_TLS_PROTOCOLS enables it (test_redirect_and_tls12_when_enabled).
    result = s_client(hostport(stack.gateway_https_url), dev_ca, flag, "-cipher", "DEFAULT@SECLEVEL=0")
    assert_refused_by_server(result, version)


def test_http2_is_offered_by_alpn(stack, dev_ca: Path) -> None:
    result = s_client(hostport(stack.gateway_https_url), dev_ca, "-alpn", "h2,http/1.1")
    assert "ALPN protocol: h2" in result.stdout, result.stdout + result.stderr
    if shutil.which("curl"):
        head = subprocess.run(
            ["curl", "--http2", "-sS", "-I", "--cacert", str(dev_ca), f"{stack.gateway_https_url}/api/v3/"],
            capture_output=True,
            text=True,
            timeout=15,
            check=False,
        )
        assert head.stdout.startswith("HTTP/2 200"), head.stdout + head.stderr


@pytest.mark.parametrize(
    ("path", "status"),
    [("/healthz", 200), ("/", 200), ("/api/v3/", 200), ("/api/v1/polls/", 200), ("/api/nothing/", 404)],
)
def test_hsts_on_every_https_answer_and_never_over_http(https_gateway, gateway, path: str, status: int) -> None:
    secure = https_gateway.get(path)
    assert secure.status_code == status, secure.text
    assert secure.headers["Strict-Transport-Security"] == "max-age=300"  # short for localhost (README, HTTPS)
    assert secure.headers["X-Request-ID"]
    plain = gateway.get(path, allow_redirects=False)
    assert plain.status_code == status, "plain HTTP is served (no redirect) unless enabled"
    assert "Strict-Transport-Security" not in plain.headers


def test_services_see_https_and_link_back_to_it(https_gateway) -> None:
    """X-Forwarded-Proto/-Port reach Django: the absolute URLs it builds (v1 pagination) are HTTPS ones."""
    user = {"username": f"tls{uuid.uuid4().hex[:10]}", "password": f"tls-{uuid.uuid4().hex}"}
    assert https_gateway.post("/api/v1/auth/register/", json=user).status_code == 201
    token = https_gateway.post("/api/v1/auth/token/", json=user).json()["access"]
    auth = {"Authorization": f"Bearer {token}"}
    for question in ("TLS 1.2?", "TLS 1.3?"):
        assert https_gateway.post("/api/v1/polls/", json={"question": question}, headers=auth).status_code == 201
    page = https_gateway.get("/api/v1/polls/?page_size=1", headers=auth).json()
    assert page["next"] and page["next"].startswith(f"{https_gateway.base_url}/api/v1/polls/?"), page["next"]
    if shutil.which("curl"):  # over HTTP/2 the Host (with its port) comes from :authority
        h2 = subprocess.run(
            ["curl", "--http2", "-sS", "--cacert", str(https_gateway.verify), "-H", f"Authorization: Bearer {token}"]
            + ["-w", "\n%{http_version}", f"{https_gateway.base_url}/api/v1/polls/?page_size=1"],
            capture_output=True,
            text=True,
            timeout=15,
            check=False,
        )
        body, version = h2.stdout.rsplit("\n", 1)
        assert version == "2", h2.stdout + h2.stderr
        assert json.loads(body)["next"].startswith(f"{https_gateway.base_url}/api/v1/polls/?"), body


def test_an_untrusted_client_is_refused(stack) -> None:
    with pytest.raises(requests.exceptions.SSLError):
        requests.get(f"{stack.gateway_https_url}/healthz", timeout=5)  # the system CAs do not know the dev CA


def test_the_banner_says_where_https_is_and_what_to_trust(stack) -> None:
    banner = stack.banner()
    assert f"HTTPS       {stack.gateway_https_url}/" in banner
    assert str(stack.run_dir / "secrets" / "dev-ca.pem") in banner


# ----- redirect and TLS 1.2 enabled: the same template in front of the same services ----------------


@pytest.fixture
def redirecting_gateway(stack, tmp_path: Path):
    """(http_url, https_url) of a gateway with GATEWAY_HTTPS_REDIRECT and TLS 1.2 on."""
    http_port, tls_port = free_port(), free_port()
    secrets = stack.run_dir / "secrets"
    conf = gateway_config.write_local(
        run_dir=tmp_path,
        port=http_port,
        polls=stack.ports["polls"],
        choices=stack.ports["choices"],
        votes=stack.ports["votes"],
        trace_sample_percent=0,
        tls={
            "port": tls_port,
            "cert": secrets / "gateway.crt",
            "key": secrets / "gateway.key",
            "protocols": "TLSv1.2 TLSv1.3",
            "redirect": True,
        },
    )
    checked = gateway_config.check(conf)
    assert checked.returncode == 0, checked.stderr
    nginx = subprocess.Popen(
        gateway_config.local_command(conf), stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True
    )
    try:
        deadline = time.monotonic() + 10
        while True:
            try:
                socket.create_connection(("127.0.0.1", tls_port), timeout=0.2).close()
                break
            except OSError:
                assert nginx.poll() is None and time.monotonic() < deadline, nginx.stderr and nginx.stderr.read()
                time.sleep(0.05)
        yield f"http://127.0.0.1:{http_port}", f"https://127.0.0.1:{tls_port}"
    finally:
        nginx.terminate()
        nginx.wait(timeout=10)


def test_redirect_and_tls12_when_enabled(redirecting_gateway, dev_ca: Path) -> None:
    http_url, https_url = redirecting_gateway
    moved = requests.post(f"{http_url}/api/v1/auth/token/?next=1", json={}, allow_redirects=False, timeout=5)
    assert moved.status_code == 308, moved.text  # method and body kept
    assert moved.headers["Location"] == f"{https_url}/api/v1/auth/token/?next=1"
    assert "Strict-Transport-Security" not in moved.headers
    for probe in ("/healthz", "/stub_status"):  # load balancers, Kubernetes and the exporter stay on HTTP
        assert requests.get(f"{http_url}{probe}", allow_redirects=False, timeout=5).status_code == 200, probe
    followed = requests.get(f"{http_url}/api/v1/polls/", timeout=5, verify=str(dev_ca))
    assert followed.status_code == 200 and followed.url == f"{https_url}/api/v1/polls/"
    assert followed.headers["Strict-Transport-Security"] == "max-age=300"

    address = hostport(https_url)
    assert negotiated(s_client(address, dev_ca, "-tls1_2")) == "TLSv1.2"
    assert negotiated(s_client(address, dev_ca, "-tls1_3")) == "TLSv1.3"
    assert_refused_by_server(s_client(address, dev_ca, "-tls1_1", "-cipher", "DEFAULT@SECLEVEL=0"), "TLSv1.1")


def test_protocols_older_than_tls12_cannot_be_configured() -> None:
    for value in ("TLSv1.1", "TLSv1 TLSv1.3", "SSLv3", ""):
        with pytest.raises(ValueError):
            gateway_config.tls_protocols(value)
    assert gateway_config.tls_protocols("TLSv1.3,TLSv1.2") == "TLSv1.2 TLSv1.3"
