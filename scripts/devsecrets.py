#!/usr/bin/env python3
"""Generate the development-only secrets ``make up`` and the test stack need, when missing.

    python scripts/devsecrets.py [RUN_DIR]            # default: $RUN_DIR or <repo>/.run
    python scripts/devsecrets.py --dotenv >> .env     # the same secrets as .env lines (docker compose)

Writes into ``RUN_DIR/secrets/`` (directory mode 700, files mode 600):

- ``django_secret_key`` -- 64 random URL-safe characters (read by servicekit.settings when
  ``DJANGO_SECRET_KEY`` is unset),
- ``jwt_private.pem`` / ``jwt_public.pem`` -- an RSA 2048 key pair (PKCS#8 / SubjectPublicKeyInfo PEM)
  the polls service signs access tokens with and every service verifies them with,
- ``service_keys/<service>.pem`` / ``service_keys/<service>.pub.pem`` -- one RSA 2048 key pair per
  service (polls, choices, votes): each signs its own internal calls (``servicekit.service_identity``),
  every service verifies with the public halves,
- ``dev-ca.pem`` / ``dev-ca.key``, ``gateway.crt`` / ``gateway.key`` -- a development CA and the
  gateway's HTTPS certificate issued by it (``ensure_dev_tls``; trust the CA: ``trust_hint``).

An existing file is never overwritten (delete it to rotate). These are for development only:
production injects real secrets through the environment (``DJANGO_SECRET_KEY``,
``JWT_PRIVATE_KEY``, ``JWT_PUBLIC_KEYS``, each service's ``SERVICE_PRIVATE_KEY``, ``SERVICE_PUBLIC_KEYS``)
or mounted files (k8s) and mounts a real certificate into the gateway (compose secrets
``gateway_tls_cert``/``gateway_tls_key``, the k8s TLS Secret ``gateway-tls``).
"""

from __future__ import annotations

import json
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

    created += ensure_service_keys(folder / "service_keys")
    return created


SERVICES = ("polls", "choices", "votes")


def ensure_service_keys(folder: Path) -> list[str]:
    """Each service's own key pair under ``folder`` (``<service>.pem``, ``<service>.pub.pem``), when missing."""
    from cryptography.hazmat.primitives import serialization

    folder.mkdir(exist_ok=True)
    os.chmod(folder, 0o700)
    created = []
    for service in SERVICES:
        private_file, public_file = folder / f"{service}.pem", folder / f"{service}.pub.pem"
        if not private_file.exists():
            private, _ = _rsa_pair()
            _write_private(private_file, private)
            created.append(f"service_keys/{private_file.name}")
        if not public_file.exists():  # derived from the private half, never a new pair
            key = serialization.load_pem_private_key(private_file.read_bytes(), password=None)
            public = key.public_key().public_bytes(
                encoding=serialization.Encoding.PEM, format=serialization.PublicFormat.SubjectPublicKeyInfo
            )
            _write_private(public_file, public)
            created.append(f"service_keys/{public_file.name}")
    return created


def dotenv_lines(run_dir: Path) -> list[str]:
    """``.env`` lines carrying the dev secrets as values (for ``docker compose``, which runs in production mode).

    PEM keys become one line with literal ``\\n`` (servicekit turns them back into newlines).
    """
    folder = Path(run_dir) / "secrets"

    def one_line(name: str) -> str:
        return (folder / name).read_text().strip().replace("\n", "\\n")

    public_keys = {name: (folder / "service_keys" / f"{name}.pub.pem").read_text().strip() for name in SERVICES}
    return [
        f"DJANGO_SECRET_KEY={one_line('django_secret_key')}",
        f"JWT_PRIVATE_KEY='{one_line('jwt_private.pem')}'",
        f"JWT_PUBLIC_KEYS='{one_line('jwt_public.pem')}'",
        *(f"{name.upper()}_SERVICE_PRIVATE_KEY='{one_line(f'service_keys/{name}.pem')}'" for name in SERVICES),
        # JSON's own "\n" escapes keep it on one line.
        f"SERVICE_PUBLIC_KEYS='{json.dumps(public_keys, separators=(',', ':'))}'",
    ]


# ----- development TLS: a local CA and the gateway's certificate ------------------------------------

TLS_NAMES = ("dev-ca.pem", "dev-ca.key", "gateway.crt", "gateway.key")
TLS_HOSTNAMES = ("localhost", "127.0.0.1", "::1")
LEAF_DAYS = 397  # what browsers accept for a server certificate
RENEW_DAYS = 30  # re-issue the gateway's certificate (from the same CA) when it expires sooner


def _write_public(path: Path, data: bytes, mode: int = 0o644) -> None:
    tmp = path.with_name(f".{path.name}.tmp")
    tmp.write_bytes(data)
    os.chmod(tmp, mode)
    os.replace(tmp, path)


def _pem_key(key) -> bytes:
    from cryptography.hazmat.primitives import serialization

    return key.private_bytes(
        encoding=serialization.Encoding.PEM,
        format=serialization.PrivateFormat.PKCS8,
        encryption_algorithm=serialization.NoEncryption(),
    )


def _new_ca():
    import datetime

    from cryptography import x509
    from cryptography.hazmat.primitives import hashes
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.x509.oid import NameOID

    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name(
        [
            x509.NameAttribute(NameOID.ORGANIZATION_NAME, "Polls Platform development"),
            x509.NameAttribute(NameOID.COMMON_NAME, f"Polls Platform dev CA {secrets.token_hex(4)}"),
        ]
    )
    now = datetime.datetime.now(datetime.UTC)
    cert = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(minutes=5))
        .not_valid_after(now + datetime.timedelta(days=3650))
        .add_extension(x509.BasicConstraints(ca=True, path_length=0), critical=True)
        .add_extension(_key_usage(certificate_authority=True), critical=True)
        .add_extension(x509.SubjectKeyIdentifier.from_public_key(key.public_key()), critical=False)
        .sign(key, hashes.SHA256())
    )
    return key, cert


def _key_usage(*, certificate_authority: bool):
    """Signatures only; a CA also signs certificates and revocation lists."""
    from cryptography import x509

    return x509.KeyUsage(
        digital_signature=True,
        content_commitment=False,
        key_encipherment=False,
        data_encipherment=False,
        key_agreement=False,
        key_cert_sign=certificate_authority,
        crl_sign=certificate_authority,
        encipher_only=False,
        decipher_only=False,
    )


def _new_leaf(ca_key, ca_cert, hostnames: tuple[str, ...]):
    import datetime
    import ipaddress

    from cryptography import x509
    from cryptography.hazmat.primitives import hashes
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

    names: list[x509.GeneralName] = []
    for host in hostnames:
        try:
            names.append(x509.IPAddress(ipaddress.ip_address(host)))
        except ValueError:
            names.append(x509.DNSName(host))
    key = ec.generate_private_key(ec.SECP256R1())
    now = datetime.datetime.now(datetime.UTC)
    cert = (
        x509.CertificateBuilder()
        .subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, hostnames[0])]))
        .issuer_name(ca_cert.subject)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(minutes=5))
        .not_valid_after(now + datetime.timedelta(days=LEAF_DAYS))
        .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
        .add_extension(x509.SubjectAlternativeName(names), critical=False)
        .add_extension(x509.ExtendedKeyUsage([ExtendedKeyUsageOID.SERVER_AUTH]), critical=False)
        .add_extension(_key_usage(certificate_authority=False), critical=True)
        .add_extension(x509.AuthorityKeyIdentifier.from_issuer_public_key(ca_key.public_key()), critical=False)
        .sign(ca_key, hashes.SHA256())
    )
    return key, cert


def _leaf_is_current(cert_file: Path, ca_cert, hostnames: tuple[str, ...]) -> bool:
    """Whether the gateway's certificate was issued by ``ca_cert``, covers ``hostnames`` and is not about to expire."""
    import datetime

    from cryptography import x509

    try:
        cert = x509.load_pem_x509_certificate(cert_file.read_bytes())
    except (OSError, ValueError):
        return False
    if cert.issuer != ca_cert.subject:
        return False
    remaining = cert.not_valid_after_utc - datetime.datetime.now(datetime.UTC)
    if remaining < datetime.timedelta(days=RENEW_DAYS):
        return False
    san = cert.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
    covered = {str(ip) for ip in san.get_values_for_type(x509.IPAddress)} | set(san.get_values_for_type(x509.DNSName))
    return all(_normal_host(host) in covered for host in hostnames)


def _normal_host(host: str) -> str:
    """An IP address as ``ipaddress`` writes it (``::1``), a DNS name as it is."""
    import ipaddress

    try:
        return str(ipaddress.ip_address(host))
    except ValueError:
        return host


def ensure_dev_tls(run_dir: Path, hostnames: tuple[str, ...] = TLS_HOSTNAMES) -> list[str]:
    """Create the development CA and the gateway's certificate under ``run_dir/secrets`` when missing.

    - ``dev-ca.pem`` / ``dev-ca.key``: a CA made on this machine (10 years, path length 0); trust
      ``dev-ca.pem`` once (``trust_hint``) and every certificate it issues is trusted,
    - ``gateway.crt`` (the gateway's certificate followed by the CA's) / ``gateway.key``: ECDSA P-256,
      ``hostnames`` as subject alternative names, 397 days; re-issued from the same CA when it expires
      within 30 days or misses a hostname, so the trust you gave the CA stays valid.

    The CA key is mode 600. ``gateway.key`` is mode 644 inside the 700 folder: other users of this
    machine cannot reach it, while the gateway container (nginx, uid 101) can read it when
    ``docker compose`` bind-mounts it as a secret. Returns the names created.
    """
    from cryptography import x509
    from cryptography.hazmat.primitives import serialization

    folder = Path(run_dir) / "secrets"
    folder.mkdir(parents=True, exist_ok=True)
    os.chmod(folder, 0o700)
    ca_file, ca_key_file = folder / "dev-ca.pem", folder / "dev-ca.key"
    cert_file, key_file = folder / "gateway.crt", folder / "gateway.key"
    created: list[str] = []
    if ca_file.exists() and ca_key_file.exists():
        ca_cert = x509.load_pem_x509_certificate(ca_file.read_bytes())
        ca_key = serialization.load_pem_private_key(ca_key_file.read_bytes(), password=None)
    else:
        ca_key, ca_cert = _new_ca()
        _write_private(ca_key_file, _pem_key(ca_key))
        _write_public(ca_file, ca_cert.public_bytes(serialization.Encoding.PEM))
        created += [ca_file.name, ca_key_file.name]
    if not (key_file.exists() and _leaf_is_current(cert_file, ca_cert, hostnames)):
        key, cert = _new_leaf(ca_key, ca_cert, hostnames)
        _write_public(key_file, _pem_key(key))
        chain = cert.public_bytes(serialization.Encoding.PEM) + ca_cert.public_bytes(serialization.Encoding.PEM)
        _write_public(cert_file, chain)
        created += [cert_file.name, key_file.name]
    return created


def trust_hint(run_dir: Path) -> str:
    """How to make clients on this machine trust the development CA (printed by ``make up``)."""
    ca = (Path(run_dir) / "secrets" / "dev-ca.pem").resolve()
    return (
        f"dev CA {ca}: curl --cacert {ca} ... | python: requests.get(..., verify='{ca}') | "
        f"system (Debian/Ubuntu): sudo cp {ca} /usr/local/share/ca-certificates/polls-dev-ca.crt "
        "&& sudo update-ca-certificates | browsers: import it as an authority "
        "(Chromium: Settings > Privacy and security > Security > Manage certificates)"
    )


def main(argv: list[str]) -> int:
    args = [a for a in argv[1:] if not a.startswith("--")]
    run_dir = Path(args[0]) if args else Path(os.environ.get("RUN_DIR") or REPO / ".run")
    created = ensure_dev_secrets(run_dir)
    tls = ensure_dev_tls(run_dir)
    if "--dotenv" in argv:
        print("\n".join(dotenv_lines(run_dir)))
        return 0
    where = run_dir / "secrets"
    print(f"dev secrets: created {', '.join(created)} in {where}" if created else f"dev secrets: present in {where}")
    print(f"dev TLS: created {', '.join(tls)} in {where}" if tls else f"dev TLS: present in {where}")
    print(trust_hint(run_dir))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
