"""A local certificate authority for the services `infra up` runs with TLS on.

Policy: the local CA lives in HOME/tls (`Settings.local_tls_file`), made once and kept:
`ca.crt` / `ca.key` (10 years), `server.crt` / `server.key` for the names the local services
answer on (127.0.0.1 and localhost, as subjectAltNames), and `client.crt` / `client.key`
whose common name is the PostgreSQL role `shrinkwatch` (the local server's `cert`
authentication maps it to that role; the local broker in `ssl` mode takes it too). A leaf
certificate is made again when it is missing, not signed by the CA there, or within 30 days
of its end (825 days). Private keys are PKCS#8 PEM without a passphrase (what Kafka's PEM
keystore, libpq and librdkafka all read), written 0600 in a 0700 folder; certificates 0644.

These certificates are for a box's own services, never a chain's: a chain's Kafka and
PostgreSQL have certificates from the chain's own CA (docs/SECURITY.md).
"""

from __future__ import annotations

import datetime as dt
import ipaddress
import os
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from cryptography import x509
from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import rsa
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

from shrinkwatch.settings import LOCAL_CA, LOCAL_CLIENT_CERT, LOCAL_CLIENT_KEY, Settings

LOCAL_HOSTS = ("127.0.0.1", "localhost")
CLIENT_NAME = "shrinkwatch"  # the local PostgreSQL superuser (infra.postgres.SUPERUSER)
CA_DAYS = 3650
LEAF_DAYS = 825
RENEW_DAYS = 30


@dataclass(frozen=True)
class Pem:
    """A private key and its certificate, PEM encoded."""

    key: bytes
    cert: bytes


@dataclass(frozen=True)
class LocalTLS:
    """The local CA's files."""

    ca: Path
    ca_key: Path
    server_cert: Path
    server_key: Path
    client_cert: Path
    client_key: Path


def local_tls(settings: Settings) -> LocalTLS:
    """Where the local CA's files are for these settings (whether they exist or not)."""
    folder = settings.local_tls_file(LOCAL_CA).parent
    return LocalTLS(
        ca=folder / LOCAL_CA,
        ca_key=folder / "ca.key",
        server_cert=folder / "server.crt",
        server_key=folder / "server.key",
        client_cert=folder / LOCAL_CLIENT_CERT,
        client_key=folder / LOCAL_CLIENT_KEY,
    )


def _new_key() -> rsa.RSAPrivateKey:
    return rsa.generate_private_key(public_exponent=65537, key_size=2048)


def _key_pem(key: rsa.RSAPrivateKey) -> bytes:
    return key.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
    )


def _now() -> dt.datetime:
    return dt.datetime.now(dt.UTC)


def new_ca(name: str = "Shrinkwatch local CA", days: int = CA_DAYS) -> Pem:
    """A self-signed CA certificate and its key."""
    key = _new_key()
    subject = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, name)])
    cert = (
        x509.CertificateBuilder()
        .subject_name(subject)
        .issuer_name(subject)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(_now() - dt.timedelta(minutes=5))
        .not_valid_after(_now() + dt.timedelta(days=days))
        .add_extension(x509.BasicConstraints(ca=True, path_length=0), critical=True)
        .add_extension(
            x509.KeyUsage(True, False, False, False, False, True, True, False, False), critical=True
        )
        .add_extension(x509.SubjectKeyIdentifier.from_public_key(key.public_key()), critical=False)
        .sign(key, hashes.SHA256())
    )
    return Pem(_key_pem(key), cert.public_bytes(serialization.Encoding.PEM))


def _alt_name(host: str) -> x509.GeneralName:
    try:
        return x509.IPAddress(ipaddress.ip_address(host))
    except ValueError:
        return x509.DNSName(host)


def issue(ca: Pem, common_name: str, hosts: Sequence[str] = (), days: int = LEAF_DAYS) -> Pem:
    """A certificate signed by `ca` for `common_name`, valid for both ends of TLS (server and
    client: a broker is its own client), with `hosts` (IP addresses or DNS names) as its
    subjectAltNames, and its key."""
    ca_key = serialization.load_pem_private_key(ca.key, password=None)
    ca_cert = x509.load_pem_x509_certificate(ca.cert)
    if not isinstance(ca_key, rsa.RSAPrivateKey):
        msg = "the CA key must be an RSA key"
        raise TypeError(msg)
    key = _new_key()
    builder = (
        x509.CertificateBuilder()
        .subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, common_name)]))
        .issuer_name(ca_cert.subject)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(_now() - dt.timedelta(minutes=5))
        .not_valid_after(_now() + dt.timedelta(days=days))
        .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
        .add_extension(
            x509.KeyUsage(True, False, True, False, False, False, False, False, False), critical=True
        )
        .add_extension(
            x509.ExtendedKeyUsage([ExtendedKeyUsageOID.SERVER_AUTH, ExtendedKeyUsageOID.CLIENT_AUTH]),
            critical=False,
        )
        .add_extension(
            x509.AuthorityKeyIdentifier.from_issuer_public_key(ca_key.public_key()), critical=False
        )
    )
    if hosts:
        builder = builder.add_extension(
            x509.SubjectAlternativeName([_alt_name(h) for h in hosts]), critical=False
        )
    cert = builder.sign(ca_key, hashes.SHA256())
    return Pem(_key_pem(key), cert.public_bytes(serialization.Encoding.PEM))


def _write(path: Path, data: bytes, mode: int) -> None:
    """Write atomically, the file never readable by others for a moment (keys: 0600)."""
    staging = path.with_name(f".{path.name}.{os.getpid()}")
    staging.unlink(missing_ok=True)
    fd = os.open(staging, os.O_WRONLY | os.O_CREAT | os.O_EXCL, mode)
    with os.fdopen(fd, "wb") as out:
        out.write(data)
    staging.chmod(mode)
    staging.replace(path)


def _paired(cert_pem: bytes, key_pem: bytes) -> bool:
    """Whether the key is the certificate's (a crash between writing the two leaves a new key
    beside the old certificate: a pair that never verifies, made again rather than kept)."""
    try:
        cert = x509.load_pem_x509_certificate(cert_pem)
        key = serialization.load_pem_private_key(key_pem, password=None)
    except (ValueError, TypeError):
        return False
    der = (serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo)
    return bool(cert.public_key().public_bytes(*der) == key.public_key().public_bytes(*der))


def _current(cert_path: Path, key_path: Path, ca: Pem) -> bool:
    """True when the leaf certificate is there with its key, signed by `ca` and not near its end."""
    if not (cert_path.is_file() and key_path.is_file()):
        return False
    if not _paired(cert_path.read_bytes(), key_path.read_bytes()):
        return False
    cert = x509.load_pem_x509_certificate(cert_path.read_bytes())
    ca_cert = x509.load_pem_x509_certificate(ca.cert)
    try:
        cert.verify_directly_issued_by(ca_cert)
    except (ValueError, TypeError, InvalidSignature):
        return False
    return cert.not_valid_after_utc - _now() > dt.timedelta(days=RENEW_DAYS)


def ensure_local_tls(settings: Settings) -> LocalTLS:
    """Make the local CA and its server and client certificates where missing or due (see the
    module docstring); return where they are."""
    files = local_tls(settings)
    files.ca.parent.mkdir(parents=True, exist_ok=True)
    files.ca.parent.chmod(0o700)
    if (
        files.ca.is_file()
        and files.ca_key.is_file()
        and _paired(files.ca.read_bytes(), files.ca_key.read_bytes())
    ):
        ca = Pem(files.ca_key.read_bytes(), files.ca.read_bytes())
    else:
        ca = new_ca()
        _write(files.ca_key, ca.key, 0o600)
        _write(files.ca, ca.cert, 0o644)
    leaves = (
        (files.server_cert, files.server_key, "Shrinkwatch local services", LOCAL_HOSTS),
        (files.client_cert, files.client_key, CLIENT_NAME, ()),
    )
    for cert_path, key_path, name, hosts in leaves:
        if not _current(cert_path, key_path, ca):
            leaf = issue(ca, name, hosts)
            _write(key_path, leaf.key, 0o600)
            _write(cert_path, leaf.cert, 0o644)
    return files
