#!/usr/bin/env python3
"""Generate the development-only secrets ``make up`` and the test stack need, when missing.

    python scripts/devsecrets.py [RUN_DIR]            # default: $RUN_DIR or <repo>/.run
    python scripts/devsecrets.py --dotenv >> .env     # the same secrets as .env lines (docker compose)

Writes into ``RUN_DIR/secrets/`` (directory mode 700, files mode 600):

- ``django_secret_key`` -- 64 random URL-safe characters (read by servicekit.settings when
  ``DJANGO_SECRET_KEY`` is unset),
- ``jwt_private.pem`` / ``jwt_public.pem`` -- an RSA 2048 key pair (PKCS#8 / SubjectPublicKeyInfo PEM)
  the polls service signs access tokens with and every service verifies them with,
- ``service_token`` -- the shared service-to-service credential.

An existing file is never overwritten (delete it to rotate). These are for development only:
production injects real secrets through the environment (``DJANGO_SECRET_KEY``,
``JWT_PRIVATE_KEY``, ``JWT_PUBLIC_KEYS``, ``SERVICE_TOKEN``).
"""

from __future__ import annotations

import os
import secrets
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent


def _write_private(path: Path, data: bytes) -> None:
    """Create ``path`` with mode 600 atomically (never visible with wider permissions)."""
    tmp = path.with_name(f".{path.name}.tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    try:
        os.write(fd, data)
    finally:
        os.close(fd)
    os.chmod(tmp, 0o600)
    os.replace(tmp, path)


def _rsa_pair() -> tuple[bytes, bytes]:
    from cryptography.hazmat.primitives import serialization
    from cryptography.hazmat.primitives.asymmetric import rsa

    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    private = key.private_bytes(
        encoding=serialization.Encoding.PEM,
        format=serialization.PrivateFormat.PKCS8,
        encryption_algorithm=serialization.NoEncryption(),
    )
    public = key.public_key().public_bytes(
        encoding=serialization.Encoding.PEM,
        format=serialization.PublicFormat.SubjectPublicKeyInfo,
    )
    return private, public


def ensure_dev_secrets(run_dir: Path) -> list[str]:
    """Create whatever of the dev secrets is missing under ``run_dir/secrets``; return the names created."""
    folder = Path(run_dir) / "secrets"
    folder.mkdir(parents=True, exist_ok=True)
    os.chmod(folder, 0o700)
    created: list[str] = []

    key_file = folder / "django_secret_key"
    if not key_file.exists():
        _write_private(key_file, (secrets.token_urlsafe(48) + "\n").encode())
        created.append(key_file.name)

    private_file, public_file = folder / "jwt_private.pem", folder / "jwt_public.pem"
    if not private_file.exists():
        private, public = _rsa_pair()
        _write_private(private_file, private)
        created.append(private_file.name)
        if not public_file.exists():
            _write_private(public_file, public)
            created.append(public_file.name)
    elif not public_file.exists():
        # Derive the public half from the existing private key rather than breaking the pair.
        from cryptography.hazmat.primitives import serialization

        key = serialization.load_pem_private_key(private_file.read_bytes(), password=None)
        public = key.public_key().public_bytes(
            encoding=serialization.Encoding.PEM,
            format=serialization.PublicFormat.SubjectPublicKeyInfo,
        )
        _write_private(public_file, public)
        created.append(public_file.name)

    token_file = folder / "service_token"
    if not token_file.exists():
        _write_private(token_file, (secrets.token_urlsafe(32) + "\n").encode())
        created.append(token_file.name)
    return created


def dotenv_lines(run_dir: Path) -> list[str]:
    """``.env`` lines carrying the dev secrets as values (for ``docker compose``, which runs in production mode).

    PEM keys become one line with literal ``\\n`` (servicekit turns them back into newlines).
    """
    folder = Path(run_dir) / "secrets"

    def one_line(name: str) -> str:
        return (folder / name).read_text().strip().replace("\n", "\\n")

    return [
        f"DJANGO_SECRET_KEY={one_line('django_secret_key')}",
        f"SERVICE_TOKEN={one_line('service_token')}",
        f"JWT_PRIVATE_KEY='{one_line('jwt_private.pem')}'",
        f"JWT_PUBLIC_KEYS='{one_line('jwt_public.pem')}'",
    ]


def main(argv: list[str]) -> int:
    args = [a for a in argv[1:] if not a.startswith("--")]
    run_dir = Path(args[0]) if args else Path(os.environ.get("RUN_DIR") or REPO / ".run")
    created = ensure_dev_secrets(run_dir)
    if "--dotenv" in argv:
        print("\n".join(dotenv_lines(run_dir)))
        return 0
    where = run_dir / "secrets"
    print(f"dev secrets: created {', '.join(created)} in {where}" if created else f"dev secrets: present in {where}")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
