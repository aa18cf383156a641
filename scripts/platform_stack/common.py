"""What every part of the supervisor shares: paths, the service table, errors and small stdlib helpers.

Stdlib only: ``python3 scripts/stack.py venv`` imports it before the virtualenv exists.
"""

from __future__ import annotations

import contextlib
import fcntl
import os
import secrets
import socket
import urllib.error
import urllib.request
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import urlsplit

REPO = Path(__file__).resolve().parents[2]
VENV = Path(os.environ.get("VENV") or REPO / ".venv")
LOCAL_HOSTS = {"127.0.0.1", "localhost", "::1", ""}


@dataclass(frozen=True)
class Service:
    name: str  # public name: paths, logs, metrics
    package: str  # Django project package (import root)
    directory: str  # folder under the repository root
    database_env: str
    port_env: str
    default_port: int
    internal_url_env: str

    @property
    def replicas_env(self) -> str:
        """``POLLS_REPLICAS``, ``CHOICE_REPLICAS``, ``VOTE_REPLICAS``: web instances of this service."""
        return self.port_env.replace("_PORT", "_REPLICAS")


SERVICES: tuple[Service, ...] = (
    Service("polls", "polls_service", "polls_service", "POLLS_DATABASE_URL", "POLLS_PORT", 8001, "POLLS_INTERNAL_URL"),
    Service(
        "choices", "choice_service", "choice_service", "CHOICE_DATABASE_URL", "CHOICE_PORT", 8002, "CHOICE_INTERNAL_URL"
    ),
    Service("votes", "vote_service", "vote_service", "VOTE_DATABASE_URL", "VOTE_PORT", 8003, "VOTE_INTERNAL_URL"),
)
GATEWAY_DEFAULT_PORT = 8080
# Web instance n (1-based) of a service listens on the service's port + REPLICA_PORT_STEP * (n - 1); a
# release's canary takes port + 10 (scripts/release.py), between instance 1 and instance 2.
REPLICA_PORT_STEP = 20


def web_process_name(service: str, instance: int) -> str:
    """``votes.web`` for instance 1 (the name every tool knows), ``votes.web.2``... for the others."""
    return f"{service}.web" if instance == 1 else f"{service}.web.{instance}"


def parse_web_process_name(name: str) -> tuple[str, int] | None:
    """``("votes", 2)`` for ``votes.web.2``, ``("votes", 1)`` for ``votes.web``; None for other processes."""
    service, _, rest = name.partition(".web")
    if not service or (rest and not (rest.startswith(".") and rest[1:].isdigit())):
        return None
    if not name.startswith(f"{service}.web"):
        return None
    return service, int(rest[1:]) if rest else 1


def instance_port(service_port: int, instance: int) -> int:
    """The port of web instance ``instance`` (1-based) of a service whose first instance listens on ``service_port``."""
    return service_port + REPLICA_PORT_STEP * (instance - 1)


OPERATOR_DEFAULTS = ("operator", "operator-dev-password")


class StackError(RuntimeError):
    """A failure ``up`` reports as one line (unreachable backend, busy port, crashed process...)."""


def read_dotenv(path: Path = REPO / ".env") -> dict[str, str]:
    """``KEY=VALUE`` lines of ``.env`` (comments and blanks skipped, optional quotes stripped)."""
    values: dict[str, str] = {}
    if not path.is_file():
        return values
    for raw in path.read_text().splitlines():
        line = raw.strip()
        if not line or line.startswith("#") or "=" not in line:
            continue
        key, value = line.split("=", 1)
        key = key.strip().removeprefix("export ").strip()
        value = value.strip()
        if len(value) >= 2 and value[0] == value[-1] and value[0] in "'\"":
            value = value[1:-1]
        values[key] = value
    return values


def effective_env(overrides: dict[str, str] | None = None) -> dict[str, str]:
    """The environment the platform sees: ``.env`` < process environment < explicit overrides."""
    merged = {**read_dotenv(), **os.environ}
    for key, value in (overrides or {}).items():
        if value is None:
            merged.pop(key, None)
        else:
            merged[key] = value
    return merged


def port_open(port: int, host: str = "127.0.0.1", timeout: float = 0.3) -> bool:
    try:
        with socket.create_connection((host, port), timeout=timeout):
            return True
    except OSError:
        return False


# A port picked with bind(("127.0.0.1", 0)) comes from the kernel's ephemeral range, and until the server
# that was given it binds, any connection opened on the machine can take it as its local port (CI saw the
# gateway of a test stack fail with "Address already in use" while the other lane's stack was busy).
# Ports picked below that range are never handed out that way. The floor leaves the fixed ports of the
# test and bench stacks (18000-18700) alone; the margin keeps a stack's derived ports (its HTTPS port is
# the gateway's + 363, replica n of a service its port + 20·(n−1)) below the range too.
FREE_PORT_FLOOR = 20000
DERIVED_PORT_MARGIN = 400
EPHEMERAL_RANGE_FILE = Path("/proc/sys/net/ipv4/ip_local_port_range")


def ephemeral_port_range(source: Path = EPHEMERAL_RANGE_FILE) -> tuple[int, int]:
    """The kernel's range of local ports for outgoing connections (Linux's default where it cannot be read)."""
    try:
        low, high = (int(value) for value in source.read_text().split())
    except (OSError, ValueError):
        return 32768, 60999
    return low, high


def free_port(*, floor: int = FREE_PORT_FLOOR, ephemeral: tuple[int, int] | None = None, attempts: int = 100) -> int:
    """A loopback port for a server started later: unbound now, and not one the kernel gives to clients."""
    low, _ = ephemeral or ephemeral_port_range()
    top = low - DERIVED_PORT_MARGIN
    for _ in range(attempts if top > floor else 0):
        port = floor + secrets.randbelow(top - floor)
        if port_bindable(port):
            return port
    # An ephemeral range reaching down to the floor leaves nothing outside it: take the kernel's pick.
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def port_bindable(port: int, host: str = "127.0.0.1") -> bool:
    """True when nothing holds ``port``: no listener and no connection (without SO_REUSEADDR: stricter than nginx)."""
    with socket.socket() as sock:
        try:
            sock.bind((host, port))
        except OSError:
            return False
    return True


def http_status(url: str, timeout: float = 2.0) -> int | None:
    """Status code of a GET, or None when nothing answers."""
    try:
        with urllib.request.urlopen(url, timeout=timeout) as response:  # noqa: S310 - local URLs only
            return response.status
    except urllib.error.HTTPError as exc:
        return exc.code
    except (urllib.error.URLError, OSError, ValueError):
        return None


def mask_url(url: str) -> str:
    """A URL without its password, for banners and error lines."""
    parts = urlsplit(url)
    if parts.password:
        netloc = parts.netloc.replace(f":{parts.password}@", ":***@")
        return parts._replace(netloc=netloc).geturl()
    return url


@contextlib.contextmanager
def file_lock(path: Path) -> Iterator[None]:
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path, "w") as handle:
        fcntl.flock(handle, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)
