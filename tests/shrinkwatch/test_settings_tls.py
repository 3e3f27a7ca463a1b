"""Settings for a chain's own Kafka and PostgreSQL: kafka_config() and database_dsn for each
combination, the ConfigError naming the key for settings that do not go together, and the
SASL password never in a repr, a dump or a settings file."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from psycopg.conninfo import conninfo_to_dict

from shrinkwatch.errors import ConfigError
from shrinkwatch.placeholders import UnsetVariable
from shrinkwatch.settings import Settings, load_settings, write_settings_file

SASL = {"kafka_sasl_username": "store-7", "kafka_sasl_password": "Pw-Sasl-31f7"}


@pytest.fixture
def pem(tmp_path: Path) -> dict[str, Path]:
    """Files standing in for a CA, a client certificate and its key (only their existence is read)."""
    out = {}
    for name in ("ca.crt", "client.crt", "client.key", "with space's.crt"):
        out[name] = tmp_path / name
        out[name].write_text("-----BEGIN CERTIFICATE-----\n")
    return out


def settings(**values: Any) -> Settings:
    return load_settings(None, **values)


def test_plaintext_is_the_bootstrap_servers_only() -> None:
    assert settings(kafka_bootstrap="b1:9092,b2:9092").kafka_config() == {
        "bootstrap.servers": "b1:9092,b2:9092"
    }


@pytest.mark.parametrize("mechanism", ["SCRAM-SHA-512", "SCRAM-SHA-256", "PLAIN"])
def test_sasl_ssl_to_a_chain(pem: dict[str, Path], mechanism: str) -> None:
    config = settings(
        kafka_bootstrap="kafka-1.chain.example:9093",
        kafka_security_protocol="sasl_ssl",
        kafka_sasl_mechanism=mechanism,
        kafka_ssl_ca=pem["ca.crt"],
        **SASL,
    ).kafka_config()
    assert config == {
        "bootstrap.servers": "kafka-1.chain.example:9093",
        "security.protocol": "SASL_SSL",
        "sasl.mechanisms": mechanism,
        "sasl.username": "store-7",
        "sasl.password": "Pw-Sasl-31f7",
        "ssl.endpoint.identification.algorithm": "https",
        "ssl.ca.location": str(pem["ca.crt"]),
    }


def test_ssl_with_a_client_certificate(pem: dict[str, Path]) -> None:
    config = settings(
        kafka_bootstrap="k:9093",
        kafka_security_protocol="ssl",
        kafka_ssl_ca=pem["ca.crt"],
        kafka_ssl_cert=pem["client.crt"],
        kafka_ssl_key=pem["client.key"],
    ).kafka_config()
    assert config == {
        "bootstrap.servers": "k:9093",
        "security.protocol": "SSL",
        "ssl.endpoint.identification.algorithm": "https",
        "ssl.ca.location": str(pem["ca.crt"]),
        "ssl.certificate.location": str(pem["client.crt"]),
        "ssl.key.location": str(pem["client.key"]),
    }


def test_ssl_without_a_ca_trusts_the_system_store() -> None:
    config = settings(kafka_bootstrap="k:9093", kafka_security_protocol="ssl").kafka_config()
    assert config == {
        "bootstrap.servers": "k:9093",
        "security.protocol": "SSL",
        "ssl.endpoint.identification.algorithm": "https",
    }


def test_sasl_plaintext_has_no_tls_keys() -> None:
    config = settings(
        kafka_bootstrap="k:9092", kafka_security_protocol="sasl_plaintext", **SASL
    ).kafka_config()
    assert config["security.protocol"] == "SASL_PLAINTEXT" and config["sasl.username"] == "store-7"
    assert not [key for key in config if key.startswith("ssl.")]


@pytest.mark.parametrize(
    ("protocol", "extra", "files"),
    [
        ("sasl_ssl", SASL, {"ssl.ca.location": "ca.crt"}),
        (
            "ssl",
            {},
            {
                "ssl.ca.location": "ca.crt",
                "ssl.certificate.location": "client.crt",
                "ssl.key.location": "client.key",
            },
        ),
        ("sasl_plaintext", SASL, {}),
    ],
)
def test_a_local_broker_is_trusted_through_the_local_ca(
    tmp_path: Path, protocol: str, extra: dict[str, str], files: dict[str, str]
) -> None:
    config = settings(
        home=tmp_path, kafka_port=1234, kafka_security_protocol=protocol, **extra
    ).kafka_config()
    assert config["bootstrap.servers"] == "127.0.0.1:1234"
    assert {k: v for k, v in config.items() if k.endswith(".location")} == {
        k: str(tmp_path / "tls" / v) for k, v in files.items()
    }


def test_the_password_is_read_from_the_environment_when_used(monkeypatch: pytest.MonkeyPatch) -> None:
    s = settings(
        kafka_bootstrap="k:9093",
        kafka_security_protocol="sasl_ssl",
        kafka_sasl_username="u",
        kafka_sasl_password="${CHAIN_KAFKA_PW}",
    )
    with pytest.raises(UnsetVariable, match="CHAIN_KAFKA_PW"):
        s.kafka_config()
    monkeypatch.setenv("CHAIN_KAFKA_PW", "from-the-env")
    assert s.kafka_config()["sasl.password"] == "from-the-env"


def test_the_sasl_password_is_never_shown_or_written(tmp_path: Path) -> None:
    s = settings(kafka_bootstrap="k:9093", kafka_security_protocol="sasl_ssl", **SASL)
    secret = SASL["kafka_sasl_password"]
    for text in (repr(s), str(s), str(s.model_dump()), s.model_dump_json()):
        assert secret not in text
    written = write_settings_file(s, tmp_path / "settings.yaml").read_text()
    assert secret not in written and "kafka_sasl_username: store-7" in written
    reference = settings(
        kafka_bootstrap="k:9093",
        kafka_security_protocol="sasl_ssl",
        kafka_sasl_username="u",
        kafka_sasl_password="${CHAIN_KAFKA_PW}",
    )
    assert (
        "kafka_sasl_password: ${CHAIN_KAFKA_PW}"
        in write_settings_file(reference, tmp_path / "r.yaml").read_text()
    )


def test_database_dsn_without_tls_is_the_url_as_given() -> None:
    url = "postgresql://sw@db.chain.example:5432/shrinkwatch?application_name=x"
    assert settings(database_url=url).database_dsn == url
    assert settings(database_url="host=db dbname=sw").database_dsn == "host=db dbname=sw"


def test_database_dsn_verify_full_with_a_client_certificate(pem: dict[str, Path]) -> None:
    s = settings(
        database_url="postgresql://sw@db.chain.example:5432/shrinkwatch?application_name=x&sslmode=disable",
        database_sslmode="verify-full",
        database_sslrootcert=pem["with space's.crt"],
        database_sslcert=pem["client.crt"],
        database_sslkey=pem["client.key"],
    )
    assert s.database_dsn.startswith("postgresql://sw@db.chain.example:5432/shrinkwatch?application_name=x&")
    assert "%20" in s.database_dsn and "%27" in s.database_dsn and " " not in s.database_dsn  # quoted
    assert conninfo_to_dict(s.database_dsn) == {
        "user": "sw",
        "host": "db.chain.example",
        "port": "5432",
        "dbname": "shrinkwatch",
        "application_name": "x",
        "sslmode": "verify-full",  # the setting's, in place of the URL's own
        "sslrootcert": str(pem["with space's.crt"]),
        "sslcert": str(pem["client.crt"]),
        "sslkey": str(pem["client.key"]),
    }


def test_database_dsn_keeps_the_urls_own_parameters_as_written() -> None:
    # libpq reads `+` as a plus: decoded and encoded again it would become a space.
    url = "postgresql://sw:p%2Bq@db/sw?application_name=a+b&options=-c%20search_path%3Dx"
    s = settings(database_url=url, database_sslmode="require")
    assert s.database_dsn == url + "&sslmode=require"
    assert conninfo_to_dict(s.database_dsn)["application_name"] == "a+b"


def test_database_dsn_in_libpq_words_is_quoted_by_libpq_rules(pem: dict[str, Path]) -> None:
    s = settings(
        database_url="host=db dbname=sw sslmode=disable",
        database_sslmode="verify-ca",
        database_sslrootcert=pem["with space's.crt"],
    )
    assert conninfo_to_dict(s.database_dsn) == {
        "host": "db",
        "dbname": "sw",
        "sslmode": "verify-ca",
        "sslrootcert": str(pem["with space's.crt"]),
    }


def test_database_dsn_require_to_a_chain_needs_no_files() -> None:
    s = settings(database_url="postgresql://sw@db/sw", database_sslmode="require")
    assert s.database_dsn == "postgresql://sw@db/sw?sslmode=require"


def test_a_local_server_with_tls_uses_the_local_ca(tmp_path: Path) -> None:
    s = settings(home=tmp_path, postgres_port=1234, database_sslmode="verify-full")
    assert conninfo_to_dict(s.database_dsn) == {
        "user": "shrinkwatch",
        "host": "127.0.0.1",
        "port": "1234",
        "dbname": "shrinkwatch",
        "sslmode": "verify-full",
        "sslrootcert": str(tmp_path / "tls" / "ca.crt"),
        "sslcert": str(tmp_path / "tls" / "client.crt"),
        "sslkey": str(tmp_path / "tls" / "client.key"),
    }
    plain = settings(home=tmp_path, postgres_port=1234, database_sslmode="disable")
    assert plain.database_dsn == "postgresql://shrinkwatch@127.0.0.1:1234/shrinkwatch?sslmode=disable"


@pytest.mark.parametrize(
    ("values", "told"),
    [
        (
            {"kafka_security_protocol": "sasl_ssl"},
            "kafka_sasl_username: kafka_security_protocol sasl_ssl needs",
        ),
        (
            {"kafka_security_protocol": "sasl_plaintext", "kafka_sasl_username": "u"},
            "kafka_sasl_password: kafka_security_protocol sasl_plaintext needs a SASL user name and password",
        ),
        (
            {"kafka_sasl_username": "u", "kafka_sasl_password": "p"},
            "kafka_sasl_username: set, but kafka_security_protocol plaintext does not use SASL",
        ),
        (
            {"kafka_security_protocol": "sasl_plaintext", "kafka_ssl_ca": "PEM:ca.crt", **SASL},
            "kafka_ssl_ca: set, but kafka_security_protocol sasl_plaintext does not use TLS",
        ),
        (
            {"kafka_security_protocol": "ssl", "kafka_ssl_cert": "PEM:client.crt"},
            "kafka_ssl_key: kafka_ssl_cert is set; a client certificate needs both kafka_ssl_cert and "
            "kafka_ssl_key",
        ),
        (
            {"kafka_security_protocol": "ssl", "kafka_ssl_ca": "/nowhere/ca.crt"},
            "kafka_ssl_ca: no file /nowhere/ca.crt",
        ),
        (
            {"database_url": "postgresql://sw@db/sw", "database_sslmode": "verify-full"},
            "database_sslrootcert: database_sslmode verify-full needs the CA certificate",
        ),
        (
            {"database_url": "postgresql://sw@db/sw", "database_sslmode": "verify-ca"},
            "database_sslrootcert: database_sslmode verify-ca needs the CA certificate",
        ),
        (
            {"database_sslrootcert": "PEM:ca.crt"},
            "database_sslrootcert: set, but database_sslmode is unset: set database_sslmode (verify-full)",
        ),
        (
            {
                "database_sslmode": "disable",
                "database_sslcert": "PEM:client.crt",
                "database_sslkey": "PEM:client.key",
            },
            "database_sslcert: set, but database_sslmode is disable",
        ),
        (
            {"database_sslmode": "verify-full", "database_sslkey": "PEM:client.key"},
            "database_sslcert: database_sslkey is set; a client certificate needs both",
        ),
        (
            {
                "database_sslmode": "require",
                "database_sslcert": "/nowhere/c.crt",
                "database_sslkey": "PEM:client.key",
            },
            "database_sslcert: no file /nowhere/c.crt",
        ),
    ],
)
def test_settings_that_do_not_go_together_name_the_key(
    pem: dict[str, Path], values: dict[str, Any], told: str
) -> None:
    given = {k: pem[v[4:]] if isinstance(v, str) and v.startswith("PEM:") else v for k, v in values.items()}
    with pytest.raises(ConfigError) as refused:
        settings(**given)
    assert told in str(refused.value)
    assert "Pw-Sasl-31f7" not in str(refused.value)


def test_the_environment_is_checked_too(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("SHRINKWATCH_KAFKA_SECURITY_PROTOCOL", "sasl_ssl")
    with pytest.raises(ConfigError, match="kafka_sasl_username: kafka_security_protocol sasl_ssl needs"):
        load_settings(None)
    monkeypatch.setenv("SHRINKWATCH_KAFKA_SASL_USERNAME", "u")
    monkeypatch.setenv("SHRINKWATCH_KAFKA_SASL_PASSWORD", "p")
    assert load_settings(None).kafka_config()["sasl.password"] == "p"
