"""Dev secrets: generated once with private permissions, never overwritten, a usable RS256 key pair."""

from __future__ import annotations

import json
import stat
from pathlib import Path

import jwt
import pytest

from scripts.devsecrets import ensure_dev_secrets, main

SERVICE_KEYS = [
    f"service_keys/{name}{suffix}" for name in ("polls", "choices", "votes") for suffix in (".pem", ".pub.pem")
]
NAMES = ["django_secret_key", "jwt_private.pem", "jwt_public.pem", *SERVICE_KEYS]


def test_generates_every_secret_with_mode_600(tmp_path: Path) -> None:
    created = ensure_dev_secrets(tmp_path)
    assert sorted(created) == sorted(NAMES)
    folder = tmp_path / "secrets"
    assert stat.S_IMODE(folder.stat().st_mode) == 0o700
    assert stat.S_IMODE((folder / "service_keys").stat().st_mode) == 0o700
    for name in NAMES:
        assert stat.S_IMODE((folder / name).stat().st_mode) == 0o600, name
    assert len((folder / "django_secret_key").read_text().strip()) >= 50
    assert (folder / "jwt_private.pem").read_text().startswith("-----BEGIN PRIVATE KEY-----")
    assert (folder / "jwt_public.pem").read_text().startswith("-----BEGIN PUBLIC KEY-----")


def test_key_pair_signs_and_verifies_rs256(tmp_path: Path) -> None:
    ensure_dev_secrets(tmp_path)
    private = (tmp_path / "secrets" / "jwt_private.pem").read_text()
    public = (tmp_path / "secrets" / "jwt_public.pem").read_text()
    token = jwt.encode({"sub": "1"}, private, algorithm="RS256")
    assert jwt.decode(token, public, algorithms=["RS256"]) == {"sub": "1"}


def test_each_service_has_a_key_pair_of_its_own(tmp_path: Path) -> None:
    ensure_dev_secrets(tmp_path)
    folder = tmp_path / "secrets" / "service_keys"
    publics = {(folder / f"{name}.pub.pem").read_text() for name in ("polls", "choices", "votes")}
    assert len(publics) == 3
    for name in ("polls", "choices", "votes"):
        token = jwt.encode({"iss": name}, (folder / f"{name}.pem").read_text(), algorithm="RS256")
        assert jwt.decode(token, (folder / f"{name}.pub.pem").read_text(), algorithms=["RS256"]) == {"iss": name}


def test_never_overwrites_existing_secrets(tmp_path: Path) -> None:
    ensure_dev_secrets(tmp_path)
    before = {name: (tmp_path / "secrets" / name).read_bytes() for name in NAMES}
    assert ensure_dev_secrets(tmp_path) == []
    assert {name: (tmp_path / "secrets" / name).read_bytes() for name in NAMES} == before


def test_missing_public_key_is_derived_from_the_existing_private_key(tmp_path: Path) -> None:
    ensure_dev_secrets(tmp_path)
    public = tmp_path / "secrets" / "jwt_public.pem"
    original = public.read_bytes()
    public.unlink()
    assert ensure_dev_secrets(tmp_path) == ["jwt_public.pem"]
    assert public.read_bytes() == original


def test_cli_reports_what_it_did(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["devsecrets.py", str(tmp_path)]) == 0
    assert (
        "created django_secret_key, jwt_private.pem, jwt_public.pem, service_keys/polls.pem" in capsys.readouterr().out
    )
    assert main(["devsecrets.py", str(tmp_path)]) == 0
    assert "present in" in capsys.readouterr().out


def test_dotenv_lines_round_trip_the_pem_keys(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["devsecrets.py", str(tmp_path), "--dotenv"]) == 0
    lines = dict(line.split("=", 1) for line in capsys.readouterr().out.strip().splitlines())
    services = {"POLLS_SERVICE_PRIVATE_KEY", "CHOICES_SERVICE_PRIVATE_KEY", "VOTES_SERVICE_PRIVATE_KEY"}
    assert set(lines) == {"DJANGO_SECRET_KEY", "JWT_PRIVATE_KEY", "JWT_PUBLIC_KEYS", "SERVICE_PUBLIC_KEYS", *services}
    public_keys = json.loads(lines["SERVICE_PUBLIC_KEYS"].strip("'"))
    assert public_keys["votes"] == (tmp_path / "secrets" / "service_keys" / "votes.pub.pem").read_text().strip()
    votes_key = lines["VOTES_SERVICE_PRIVATE_KEY"].strip("'").replace("\\n", "\n")
    assert votes_key == (tmp_path / "secrets" / "service_keys" / "votes.pem").read_text().strip()
    private = lines["JWT_PRIVATE_KEY"].strip("'").replace("\\n", "\n")
    assert private == (tmp_path / "secrets" / "jwt_private.pem").read_text().strip()
    assert "\n" not in lines["JWT_PUBLIC_KEYS"]
