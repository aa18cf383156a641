"""servicekit.settings: auth configuration from the environment (lifetimes capped, production refuses to
start without secrets), and every service's settings module naming each shared setting."""

from __future__ import annotations

import ast
import json
from pathlib import Path

import pytest
from django.core.exceptions import ImproperlyConfigured

from servicekit import jwks
from servicekit.settings import auth_settings, common_settings, issuer_settings
from servicekit.throttle_rates import PRODUCTION_THROTTLE_RATES


@pytest.fixture
def run(tmp_path):
    return tmp_path


@pytest.mark.parametrize("minutes", ["0", "16", "60"])
def test_access_lifetime_is_capped_at_15_minutes(monkeypatch, run, minutes) -> None:
    monkeypatch.setenv("JWT_ACCESS_MINUTES", minutes)
    with pytest.raises(ImproperlyConfigured):
        issuer_settings(run=run)


def test_lifetimes_from_the_environment(monkeypatch, run) -> None:
    monkeypatch.setenv("JWT_ACCESS_MINUTES", "15")
    monkeypatch.setenv("JWT_REFRESH_MINUTES", "120")
    built = issuer_settings(run=run)
    assert (built["JWT_ACCESS_SECONDS"], built["JWT_REFRESH_SECONDS"]) == (900, 7200)


def test_leeway_never_exceeds_30_seconds(monkeypatch, run) -> None:
    monkeypatch.setenv("JWT_LEEWAY_SECONDS", "300")
    assert auth_settings(run=run, service="votes")["JWT_LEEWAY_SECONDS"] == 30


def test_production_needs_a_private_key(monkeypatch, run) -> None:
    monkeypatch.setenv("JWT_PRIVATE_KEY", "")
    monkeypatch.setenv("JWT_PRIVATE_KEY_FILE", str(run / "missing.pem"))
    with pytest.raises(ImproperlyConfigured):
        issuer_settings(run=run, production=True)
    key_file = run / "key.pem"
    key_file.write_text(jwks.private_pem(jwks.generate_private_key()))
    monkeypatch.setenv("JWT_PRIVATE_KEY_FILE", str(key_file))
    assert issuer_settings(run=run, production=True)["JWT_PRIVATE_KEY_FILE"] == str(key_file)


def test_production_needs_the_services_own_key(monkeypatch, run) -> None:
    monkeypatch.setenv("DJANGO_ENV", "production")
    monkeypatch.setenv("SERVICE_PRIVATE_KEY", "")
    monkeypatch.setenv("SERVICE_PRIVATE_KEY_FILE", str(run / "missing.pem"))
    with pytest.raises(ImproperlyConfigured, match="votes service's own RSA key"):
        auth_settings(run=run, service="votes")
    pem = jwks.private_pem(jwks.generate_private_key())
    monkeypatch.setenv("SERVICE_PRIVATE_KEY", pem.replace("\n", "\\n"))
    built = auth_settings(run=run, service="votes")
    assert built["SERVICE_PRIVATE_KEY"] == pem.strip()
    assert built["THROTTLE_RATES"] == PRODUCTION_THROTTLE_RATES


def test_service_keys_from_the_run_folder_or_one_json_variable(monkeypatch, run) -> None:
    for name in ("SERVICE_PRIVATE_KEY", "SERVICE_PRIVATE_KEY_FILE", "SERVICE_PUBLIC_KEYS", "SERVICE_KEYS_DIR"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.delenv("JWT_PUBLIC_KEYS_FILE", raising=False)
    built = auth_settings(run=run, service="choices")
    assert built["SERVICE_PRIVATE_KEY_FILE"] == str(run / "secrets" / "service_keys" / "choices.pem")
    assert built["SERVICE_KEYS_DIR"] == str(run / "secrets" / "service_keys")
    assert built["SERVICE_PUBLIC_KEYS"] == {}
    assert built["JWT_PUBLIC_KEYS_FILE"] == str(run / "secrets" / "jwt_public.pem")
    public = jwks.public_pem(jwks.generate_private_key().public_key())
    monkeypatch.setenv("SERVICE_PUBLIC_KEYS", json.dumps({"polls": public}))
    assert auth_settings(run=run, service="choices")["SERVICE_PUBLIC_KEYS"] == {"polls": public.strip()}
    monkeypatch.setenv("SERVICE_PUBLIC_KEYS", "polls=" + public)
    with pytest.raises(ImproperlyConfigured, match="JSON object"):
        auth_settings(run=run, service="choices")


def test_one_line_pem_bundles_from_env_files(monkeypatch, run) -> None:
    first, second = (jwks.generate_private_key().public_key() for _ in range(2))
    bundle = (jwks.public_pem(first) + jwks.public_pem(second)).replace("\n", "\\n")
    monkeypatch.setenv("JWT_PUBLIC_KEYS", bundle)
    keys = jwks.load_public_keys(auth_settings(run=run, service="votes")["JWT_PUBLIC_KEYS"])
    assert set(keys) == {jwks.thumbprint(first), jwks.thumbprint(second)}


def test_short_rsa_keys_are_refused() -> None:
    from cryptography.hazmat.primitives.asymmetric import rsa

    weak = rsa.generate_private_key(public_exponent=65537, key_size=1024)
    with pytest.raises(ValueError):
        jwks.load_public_keys(jwks.public_pem(weak.public_key()))


REPO = Path(__file__).resolve().parents[2]
SETTINGS_MODULES = [
    REPO / "polls_service" / "polls_service" / "settings.py",
    REPO / "choice_service" / "choice_service" / "settings.py",
    REPO / "vote_service" / "vote_service" / "settings.py",
    REPO / "servicekit" / "tests" / "kitproject" / "settings.py",
]


def _assigned_names(path: Path) -> set[str]:
    tree = ast.parse(path.read_text())
    return {
        target.id
        for node in tree.body
        if isinstance(node, ast.Assign)
        for target in node.targets
        if isinstance(target, ast.Name)
    }


@pytest.mark.parametrize("path", SETTINGS_MODULES, ids=lambda path: path.parent.name)
def test_every_settings_module_names_each_shared_setting(monkeypatch, tmp_path, path) -> None:
    monkeypatch.setenv("RUN_DIR", str(tmp_path / "run"))
    shared = common_settings(
        service="x", base_dir=tmp_path / "x", database_env="X_DATABASE_URL", apps=[], urlconf="x.urls"
    )
    missing = set(shared) - _assigned_names(path)
    assert not missing, f"{path.relative_to(REPO)} does not take {sorted(missing)} from common_settings"
