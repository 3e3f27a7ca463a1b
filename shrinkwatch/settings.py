"""Typed settings (CONTRACTS §1): environment variables win over the settings file.

`load_settings` answers whatever a settings file or the environment holds with a ConfigError
naming the key (or the variable): a file that is not UTF-8 or not YAML, one whose aliases
expand past what a site file may (shrinkwatch.site_file.read_yaml), a name that is not text, a
value with a NUL, a list variable that is not JSON.

The secrets among them (`SECRET_SETTINGS`) are pydantic SecretStr (masked in reprs and
dumps) and may be written as `${VAR}` references, in the settings file above all: the
reference is what is kept and written out (a settings file for another process holds it,
never the value); `Settings.secret` reads the value from the environment when it is used.
"""

from __future__ import annotations

import ipaddress
import os
import re
from collections.abc import Mapping
from pathlib import Path
from typing import Any, Literal
from urllib.parse import quote, unquote, urlsplit, urlunsplit

import yaml
from pydantic import Field, SecretStr, ValidationError, field_serializer, field_validator, model_validator
from pydantic_settings import BaseSettings, PydanticBaseSettingsSource, SettingsConfigDict, SettingsError

from shrinkwatch.errors import ConfigError, format_validation_error
from shrinkwatch.placeholders import FORM, placeholders, resolve_secret, well_formed
from shrinkwatch.site_file import THRESHOLD_DEFAULTS, read_yaml, unstorable_text

REPO_ROOT = Path(__file__).resolve().parent.parent
TOPICS = ("detections", "camera-health", "incidents", "dlq")
SecretSetting = Literal["smtp_password", "twilio_auth_token", "sso_client_secret", "kafka_sasl_password"]
SECRET_SETTINGS: tuple[SecretSetting, ...] = (
    "smtp_password",
    "twilio_auth_token",
    "sso_client_secret",
    "kafka_sasl_password",
)


# The local CA's files (infra/tls.py) that `infra up` makes for the services it runs with TLS
# on: the settings' CA and client certificate default to them for a local broker or server.
LOCAL_TLS_DIR = "tls"
LOCAL_CA, LOCAL_CLIENT_CERT, LOCAL_CLIENT_KEY = "ca.crt", "client.crt", "client.key"
_SSL_DSN_KEYS = ("sslmode", "sslrootcert", "sslcert", "sslkey")


def _plain(value: SecretStr | str | None) -> str | None:
    # A SecretStr as validated; a str where a test's model_copy put one without validation.
    return value.get_secret_value() if isinstance(value, SecretStr) else value


class Settings(BaseSettings):
    """Every setting of Shrinkwatch; build one at the entry point and pass it down."""

    model_config = SettingsConfigDict(env_prefix="SHRINKWATCH_", extra="forbid", allow_inf_nan=False)

    kafka_bootstrap: str | None = Field(
        None, description="Kafka bootstrap servers; unset means the local broker of `infra up`."
    )
    database_url: str | None = Field(
        None, description="PostgreSQL URL (libpq form); unset means the local server of `infra up`."
    )
    topic_prefix: str = Field("sw.", pattern=r"^[A-Za-z0-9._-]*$", description="Topic prefix.")
    topic_partitions: int = Field(3, ge=1, le=256, description="Partitions of created topics.")
    topic_replication: int = Field(
        1, ge=1, le=16, description="Replication factor of created topics (3 on a chain's cluster)."
    )
    # A chain's own Kafka and PostgreSQL, securely (docs/DEPLOY.md): every Kafka client is built
    # from `kafka_config()`, every PostgreSQL connection from `database_dsn`.
    kafka_security_protocol: Literal["plaintext", "ssl", "sasl_plaintext", "sasl_ssl"] = Field(
        "plaintext", description="How Kafka clients connect: plaintext, ssl, sasl_plaintext or sasl_ssl."
    )
    kafka_sasl_mechanism: Literal["SCRAM-SHA-512", "SCRAM-SHA-256", "PLAIN"] = Field(
        "SCRAM-SHA-512", description="SASL mechanism (with sasl_plaintext or sasl_ssl)."
    )
    kafka_sasl_username: str | None = Field(None, description="SASL user name.")
    kafka_sasl_password: SecretStr | None = Field(None, description="SASL password (${VAR} allowed).")
    kafka_ssl_ca: Path | None = Field(None, description="CA certificate (PEM) that signed the brokers'.")
    kafka_ssl_cert: Path | None = Field(None, description="Client certificate (PEM) for mutual TLS.")
    kafka_ssl_key: Path | None = Field(None, description="The client certificate's private key (PEM).")
    database_sslmode: Literal["disable", "allow", "prefer", "require", "verify-ca", "verify-full"] | None = (
        Field(None, description="libpq sslmode added to the database URL (verify-full on a chain).")
    )
    database_sslrootcert: Path | None = Field(None, description="CA certificate of the PostgreSQL server.")
    database_sslcert: Path | None = Field(None, description="Client certificate for PostgreSQL (PEM).")
    database_sslkey: Path | None = Field(None, description="The PostgreSQL client certificate's key (PEM).")
    detections_retention_h: float = Field(
        48.0,
        gt=0,
        description="How long a created sw.detections keeps frames (hours): the flows' replay window "
        "after an outage; about 0.8 kB a frame, 14 MiB an hour per camera at 5 fps.",
    )
    model: str = Field("yolov8n.pt", description="YOLOv8 weights: a path or an Ultralytics name.")
    home: Path = Field(Path(".shrinkwatch"), description="Where local state lives.")

    kafka_port: int = Field(19092, ge=1, le=65535, description="Local broker's client port.")
    kafka_controller_port: int = Field(19093, ge=1, le=65535, description="KRaft controller port.")
    kafka_heap: str = Field("768m", pattern=r"^\d+[mg]$", description="Local broker's JVM heap.")
    postgres_port: int = Field(15432, ge=1, le=65535, description="Local PostgreSQL port.")
    postgres_bin: Path = Field(Path("/usr/lib/postgresql/15/bin"), description="PostgreSQL server binaries.")

    backend: Literal["auto", "pytorch", "onnx", "openvino"] = Field(
        "auto",
        description=(
            "Inference runtime; 'auto' keeps an exported model as it is and runs .pt weights with "
            "OpenVINO on a CPU, PyTorch with CUDA. ONNX and OpenVINO export a .pt once."
        ),
    )
    model_cache: Path | None = Field(
        None,
        description="Where exported models are cached (default ~/.cache/shrinkwatch/models).",
    )
    pose_model: str | None = Field(
        None, description="Optional YOLOv8-pose model adding keypoints to persons (path or shared name)."
    )
    imgsz: int = Field(640, ge=64, le=1920, multiple_of=32, description="Inference image size.")
    precision: Literal["auto", "fp32", "int8"] = Field(
        "auto", description="Model precision on a CPU; 'auto' is int8 where its accuracy holds (issue 21)."
    )
    infer_batch: int = Field(
        1,
        ge=1,
        le=64,
        description="Most frames, of different cameras, the scheduler takes in one call (run together, "
        "one per stream).",
    )
    infer_streams: int = Field(
        0,
        ge=0,
        le=16,
        description="Frames of different cameras the model runs at once, each on its own OpenVINO stream "
        "and core, none waiting for another's (with infer_batch 1): 0 is one per core (at most 4), 1 one "
        "at a time.",
    )
    conf: float = Field(0.25, gt=0, lt=1, description="Detection confidence threshold.")
    redact_conf: float = Field(
        0.1,
        gt=0,
        lt=1,
        description="People the model finds with at least this confidence have their heads blurred in "
        "evidence and the live view, though only those at `conf` or more are tracked and published: "
        "privacy errs on blurring more.",
    )
    classes: list[str] = Field(
        ["person", "backpack", "handbag", "suitcase"], description="COCO classes to publish."
    )

    motion_min_area: float = Field(
        0.003, ge=0, le=1, description="Motion gating: share of the image that must change."
    )
    motion_max_skip_s: float = Field(
        2.0, ge=0, description="Motion gating: run the model at least this often anyway."
    )
    evidence: bool = Field(True, description="Save a snapshot and a clip for each new incident.")
    evidence_path: Path | None = Field(None, description="Evidence folder (default: HOME/evidence).")
    evidence_before_s: float = Field(5.0, ge=0, le=30, description="Clip seconds before an incident.")
    evidence_after_s: float = Field(5.0, ge=0, le=30, description="Clip seconds after an incident.")
    loiter_threshold_s: float = Field(
        THRESHOLD_DEFAULTS["loiter_s"],
        gt=0,
        description="Dwell in a high_value zone that opens a loitering incident.",
    )
    zone_exit_grace_s: float = Field(
        THRESHOLD_DEFAULTS["zone_exit_grace_s"],
        ge=0,
        description="Time outside a zone that still counts as the same visit.",
    )
    track_timeout_s: float = Field(
        THRESHOLD_DEFAULTS["track_timeout_s"],
        gt=0,
        description="A track unseen this long (in frame time) has ended.",
    )
    incident_update_s: float = Field(
        THRESHOLD_DEFAULTS["incident_update_s"],
        gt=0,
        description="Publish a new incident version after this much more dwell.",
    )
    extensions: list[str] = Field(
        default_factory=list, description="Modules imported when a flow starts (they register signals)."
    )
    zones_refresh_s: float = Field(30.0, gt=0, description="How often flows re-read zones.")
    flow_cluster_port: int = Field(
        21300, ge=1, le=65000, description="First port of `flows run --processes M` (M ports, 127.0.0.1)."
    )
    occupancy_lateness_s: float = Field(
        10.0, ge=0, description="Occupancy: frame-time seconds a minute stays open after it ends."
    )
    occupancy_idle_close_s: float = Field(
        120.0, gt=0, description="Occupancy: close a silent camera's open minutes after this long."
    )
    calibration_interval_s: float = Field(
        3600.0, gt=0, description="How often `flows calibrate --schedule` re-learns risk weights."
    )
    rollups_interval_s: float = Field(
        300.0, gt=0, description="How often `rollups run --schedule` refreshes the analytics rollups."
    )
    retention_occupancy_days: int = Field(
        35,
        ge=1,
        description="Keep per-minute occupancy (and late frames) this many days; the hourly rollup stays.",
    )
    retention_heatmap_days: int = Field(
        120, ge=1, description="Keep hourly heatmaps this many days; the daily rollup stays."
    )
    retention_alerts_days: int = Field(
        30,
        ge=1,
        description="Keep sent and failed alert messages this many days (at least alerts_max_age_s "
        "and a day: they stop a replayed incident from alerting twice).",
    )
    retention_evidence_access_days: int = Field(
        730,
        ge=90,
        description="Keep the evidence access log (views, downloads, reveals, exports, purges, holds) "
        "this many days, at least 90 (the table refuses to delete a younger row); evidence itself "
        "is kept per store (site file `privacy.retention_days`).",
    )
    privacy_purge_interval_s: float = Field(
        3600.0,
        gt=0,
        description="How often the scheduled privacy purge deletes evidence past its store's retention.",
    )
    reveal_minutes: int = Field(
        30,
        ge=1,
        le=24 * 60,
        description="How long an analyst's reveal of one incident's unblurred evidence lasts.",
    )
    calibration_prior_strength: float = Field(
        10.0, gt=0, description="How many analyst verdicts a default risk weight is worth."
    )

    dashboard_port: int = Field(8501, ge=1, le=65535, description="Streamlit dashboard port.")
    dashboard_address: str = Field(
        "127.0.0.1",
        min_length=1,
        description="Address the dashboard listens on: loopback by default; 0.0.0.0 (all) only "
        "behind a TLS reverse proxy (docs/DASHBOARD.md).",
    )
    dashboard_session_hours: float = Field(
        12.0, gt=0, le=24 * 30, description="A dashboard sign-in lasts this long (then sign in again)."
    )
    dashboard_trusted_proxies: list[str] = Field(
        default_factory=list,
        description="Addresses of reverse proxies in front of the dashboard: from these, the client's "
        "address is the last one in X-Forwarded-For (sign-in throttling counts per client address).",
    )
    api_host: str = Field(
        "127.0.0.1",
        min_length=1,
        description="Address `shrinkwatch api` listens on: loopback by default (put a TLS reverse proxy in "
        "front to serve a network); 0.0.0.0 in a container.",
    )
    api_port: int = Field(8600, ge=1, le=65535, description="`shrinkwatch api`'s HTTP port.")
    api_db_connections: int = Field(
        10,
        ge=1,
        le=100,
        description="PostgreSQL connections `shrinkwatch api` keeps open for its requests (a pool per "
        "process; a request waits up to 5 s for one, then 503). Event streams open their own.",
    )
    api_trusted_proxies: list[str] = Field(
        default_factory=list,
        description="Addresses (or networks, 10.0.0.0/8) of reverse proxies in front of `shrinkwatch api`: "
        "from these, a request's address is taken from X-Forwarded-For (a token's last use, the evidence "
        "access log); from any other peer the header is ignored. None by default.",
    )
    dashboard_public_url: str | None = Field(
        None,
        description="The dashboard's address as people reach it (https://...): links in alerts, and "
        "single sign-on's return address. Default: the address the browser used.",
    )
    sso_issuer: str | None = Field(
        None,
        description="OpenID Connect issuer URL of the chain's identity provider: turns on single sign-on.",
    )
    sso_client_id: str | None = Field(None, description="Single sign-on: this dashboard's client id.")
    sso_client_secret: SecretStr | None = Field(
        None, description="Single sign-on: this dashboard's client secret (may be ${VAR})."
    )
    sso_label: str = Field("single sign-on", description="Single sign-on: the provider's name on the button.")
    smtp_host: str = Field("127.0.0.1", description="SMTP server for alert email.")
    smtp_port: int = Field(587, ge=1, le=65535, description="SMTP port (587 STARTTLS, 465 SMTPS, 25 plain).")
    smtp_security: str = Field(
        "starttls",
        pattern=r"^(starttls|ssl|none)$",
        description="SMTP transport security: starttls, ssl or none.",
    )
    smtp_ca_file: Path | None = Field(
        None,
        description="Certificates (PEM) to trust for the SMTP server's TLS, beside the system's: a "
        "mail relay with a private CA.",
    )
    smtp_user: str | None = Field(None, description="SMTP login (none: no login).")
    smtp_password: SecretStr | None = Field(None, description="SMTP password (may be ${VAR}).")
    twilio_account_sid: str | None = Field(None, description="SMS alerts: the Twilio account SID.")
    twilio_auth_token: SecretStr | None = Field(
        None, description="SMS alerts: the Twilio auth token (may be ${VAR})."
    )
    twilio_from: str | None = Field(None, description="SMS alerts: the sending number (E.164) or service.")
    twilio_api_base: str | None = Field(
        None,
        description="SMS alerts: another address for Twilio's API (a test server); default Twilio's own.",
    )
    alerts_from: str = Field("Shrinkwatch <alerts@localhost>", description="The From of alert email.")
    alerts_camera_after_s: float = Field(
        300.0, gt=0, description="Alert a store's recipients when a camera is offline or degraded this long."
    )
    alerts_max_age_s: float = Field(
        3600.0,
        gt=0,
        description="Incidents older than this when read (a backlog, a first start) are not alerted.",
    )
    alerts_max_attempts: int = Field(
        8, ge=1, description="Tries per alert message before it is marked failed."
    )
    alerts_snapshot_wait_s: float = Field(
        2.0,
        ge=0,
        le=30,
        description="An incident email waits at most this long for the camera's snapshot file to inline "
        "(the detector saves one within a second); then it goes without.",
    )
    dashboard_secure_cookie: bool = Field(
        False, description="Mark the sign-in cookie Secure (browsers send it over HTTPS only): on behind TLS."
    )
    camera_sim_port: int = Field(18080, ge=1, le=65535, description="camera-sim HTTP port.")
    metrics_host: str = Field(
        "127.0.0.1",
        min_length=1,
        description="Address the services' Prometheus /metrics listen on: loopback by default; 0.0.0.0 "
        "(all) for a Prometheus on another machine (docs/OPERATIONS.md, Metrics).",
    )
    metrics_port: int = Field(
        9560,
        ge=0,
        le=65000,
        description="First port of the services' Prometheus /metrics: each role serves at this + its "
        "offset (+10 per shard or flow process; docs/OPERATIONS.md, Metrics); 0 turns metrics off.",
    )
    log_level: str = Field("INFO", pattern=r"^(DEBUG|INFO|WARNING|ERROR)$")

    @field_validator("home")
    @classmethod
    def _absolute_home(cls, value: Path) -> Path:
        return value.expanduser().absolute()

    @field_validator("api_trusted_proxies")
    @classmethod
    def _networks(cls, value: list[str]) -> list[str]:
        """Each an IP address or network: a host name would silently trust nobody (uvicorn
        compares addresses)."""
        for entry in value:
            try:
                ipaddress.ip_network(entry, strict=False)
            except ValueError:
                msg = f"{entry!r} is not an IP address or network (e.g. 10.0.0.5, 10.0.0.0/8)"
                raise ValueError(msg) from None
        return value

    @field_validator("dashboard_trusted_proxies")
    @classmethod
    def _addresses(cls, value: list[str]) -> list[str]:
        """Each an IP address (the dashboard compares the peer's address with each)."""
        for entry in value:
            try:
                ipaddress.ip_address(entry)
            except ValueError:
                msg = f"{entry!r} is not an IP address (e.g. 10.0.0.5)"
                raise ValueError(msg) from None
        return value

    @field_validator(*SECRET_SETTINGS)
    @classmethod
    def _references_well_formed(cls, value: SecretStr | None) -> SecretStr | None:
        if value is not None and not well_formed(value.get_secret_value()):
            raise ValueError(FORM)
        return value

    @model_validator(mode="after")
    def _secure_connections_consistent(self) -> Settings:
        """ConfigError naming the key for Kafka and PostgreSQL security settings that do not go
        together (docs/SECURITY.md, "A chain's own Kafka and PostgreSQL")."""
        problems = _kafka_security_problems(self) + _database_security_problems(self)
        if problems:
            msg = "invalid settings:\n" + "\n".join(f"  {p}" for p in problems)
            raise ConfigError(msg)
        return self

    @field_serializer(*SECRET_SETTINGS, when_used="json")
    def _never_the_value(self, value: SecretStr | str | None) -> str | None:
        """In JSON (what a settings file for another process is written from) a `${VAR}`
        reference stays as it is and a secret's value is left out (None): `secret_environment`
        hands it over."""
        text = _plain(value)
        return text if text and placeholders(text) else None

    def secret(self, name: SecretSetting, environ: Mapping[str, str] | None = None) -> str | None:
        """A secret setting's value, to use now and not keep: each `${VAR}` in it read from
        `environ` (default: this process's environment); UnsetVariable names the setting and
        the variable when it is not set."""
        text = _plain(getattr(self, name))
        if not text:
            return None
        return resolve_secret(text, name, os.environ if environ is None else environ)

    @classmethod
    def settings_customise_sources(
        cls,
        settings_cls: type[BaseSettings],
        init_settings: PydanticBaseSettingsSource,
        env_settings: PydanticBaseSettingsSource,
        dotenv_settings: PydanticBaseSettingsSource,
        file_secret_settings: PydanticBaseSettingsSource,
    ) -> tuple[PydanticBaseSettingsSource, ...]:
        # The settings file arrives as init kwargs; the environment wins over it.
        return (env_settings, init_settings)

    @property
    def kafka_managed(self) -> bool:
        """True when `infra up` runs the broker (no external bootstrap configured)."""
        return self.kafka_bootstrap is None

    @property
    def postgres_managed(self) -> bool:
        """True when `infra up` runs PostgreSQL (no external URL configured)."""
        return self.database_url is None

    @property
    def kafka_servers(self) -> str:
        """The bootstrap servers to connect to."""
        return self.kafka_bootstrap or f"127.0.0.1:{self.kafka_port}"

    @property
    def database_dsn(self) -> str:
        """The PostgreSQL URL to connect to, with the `database_ssl*` settings as its parameters
        (they replace the same parameters of `database_url`); a local server with TLS on is
        reached with the local CA's root and client certificates unless others are set."""
        url = self.database_url or (f"postgresql://shrinkwatch@127.0.0.1:{self.postgres_port}/shrinkwatch")
        return _with_parameters(url, self._database_ssl())

    def _database_ssl(self) -> dict[str, str]:
        """The libpq ssl parameters the settings give (sslmode, sslrootcert, sslcert, sslkey)."""
        if self.database_sslmode is None:
            return {}
        local = self.postgres_managed and self.database_sslmode != "disable"
        files = {
            "sslrootcert": self.database_sslrootcert or (self.local_tls_file(LOCAL_CA) if local else None),
            "sslcert": self.database_sslcert or (self.local_tls_file(LOCAL_CLIENT_CERT) if local else None),
            "sslkey": self.database_sslkey or (self.local_tls_file(LOCAL_CLIENT_KEY) if local else None),
        }
        return {"sslmode": self.database_sslmode} | {k: str(v) for k, v in files.items() if v is not None}

    def kafka_config(self) -> dict[str, str | int]:
        """What every Kafka client (producer, consumer, admin) of Shrinkwatch connects with: the
        bootstrap servers and the `kafka_security_protocol`, SASL and TLS settings (librdkafka's
        keys). TLS always checks the broker's name against its certificate; a local broker
        with TLS on is trusted through the local CA (and, for `ssl`, its client certificate)
        unless other files are set."""
        config: dict[str, str | int] = {"bootstrap.servers": self.kafka_servers}
        protocol = self.kafka_security_protocol
        if protocol == "plaintext":
            return config
        config["security.protocol"] = protocol.upper()
        if protocol.startswith("sasl_"):
            config["sasl.mechanisms"] = self.kafka_sasl_mechanism
            config["sasl.username"] = self.kafka_sasl_username or ""
            config["sasl.password"] = self.secret("kafka_sasl_password") or ""
        if protocol.endswith("ssl"):
            local = self.kafka_managed
            ca = self.kafka_ssl_ca or (self.local_tls_file(LOCAL_CA) if local else None)
            mutual = local and protocol == "ssl"  # the local broker's only authentication then
            cert = self.kafka_ssl_cert or (self.local_tls_file(LOCAL_CLIENT_CERT) if mutual else None)
            key = self.kafka_ssl_key or (self.local_tls_file(LOCAL_CLIENT_KEY) if mutual else None)
            config["ssl.endpoint.identification.algorithm"] = "https"
            for name, path in (("ca", ca), ("certificate", cert), ("key", key)):
                if path is not None:
                    config[f"ssl.{name}.location"] = str(path)
        return config

    def local_tls_file(self, name: str) -> Path:
        """A file of the local CA that `infra up` makes for local services with TLS on."""
        return self.home / LOCAL_TLS_DIR / name

    def topic(self, name: str) -> str:
        """Full name of one of the CONTRACTS §3 topics, e.g. `topic("detections")`."""
        if name not in TOPICS:
            msg = f"unknown topic {name!r}; expected one of {', '.join(TOPICS)}"
            raise ValueError(msg)
        return f"{self.topic_prefix}{name}"

    def evidence_dir(self) -> Path:
        """Where snapshots and clips are written; incident `snapshot` values are relative to it."""
        return (self.evidence_path or self.home / "evidence").expanduser().absolute()

    def model_cache_dir(self) -> Path:
        """Where models exported to ONNX or OpenVINO are kept, shared by every process and home."""
        if self.model_cache is not None:
            return self.model_cache.expanduser().absolute()
        return Path.home() / ".cache" / "shrinkwatch" / "models"  # beside the Kafka jars

    def live_dir(self) -> Path:
        """Where each camera's newest annotated frame is kept for the dashboard."""
        return self.home / "live"

    def logs_dir(self) -> Path:
        """Folder for the log files of services and background processes."""
        return self.home / "logs"


def _missing_files(settings: Settings, names: tuple[str, ...]) -> list[str]:
    return [
        f"{name}: no file {path} (a PEM file this process can read)"
        for name in names
        if (path := getattr(settings, name)) is not None and not _is_file(path)
    ]


def _is_file(path: Path | str) -> bool:
    """Whether `path` names a file; False, not OSError, for a name no file system takes (too
    long, a NUL in it)."""
    try:
        return Path(path).expanduser().is_file()
    except (OSError, ValueError):
        return False


def _kafka_security_problems(settings: Settings) -> list[str]:
    """What is inconsistent in the Kafka security settings, each line naming its key."""
    protocol = settings.kafka_security_protocol
    problems = []
    for name in ("kafka_sasl_username", "kafka_sasl_password"):
        given = getattr(settings, name) is not None
        if protocol.startswith("sasl_") and not given:
            problems.append(f"{name}: kafka_security_protocol {protocol} needs a SASL user name and password")
        elif given and not protocol.startswith("sasl_"):
            problems.append(f"{name}: set, but kafka_security_protocol {protocol} does not use SASL")
    tls_files = ("kafka_ssl_ca", "kafka_ssl_cert", "kafka_ssl_key")
    if not protocol.endswith("ssl"):
        problems += [
            f"{name}: set, but kafka_security_protocol {protocol} does not use TLS"
            for name in tls_files
            if getattr(settings, name) is not None
        ]
    problems += _pair_problems(settings, "kafka_ssl_cert", "kafka_ssl_key")
    return problems + _missing_files(settings, tls_files)


def _database_security_problems(settings: Settings) -> list[str]:
    """What is inconsistent in the PostgreSQL TLS settings, each line naming its key."""
    mode = settings.database_sslmode
    tls_files = ("database_sslrootcert", "database_sslcert", "database_sslkey")
    problems = []
    if mode in (None, "disable"):
        problems += [
            f"{name}: set, but database_sslmode is {mode or 'unset'}: set database_sslmode (verify-full)"
            for name in tls_files
            if getattr(settings, name) is not None
        ]
    verifies = mode in ("verify-ca", "verify-full")
    if verifies and not settings.postgres_managed and settings.database_sslrootcert is None:
        # Required, not left to libpq's ~/.postgresql/root.crt: which CA is trusted is written here.
        problems.append(
            f"database_sslrootcert: database_sslmode {mode} needs the CA certificate that signed "
            "the server's (PEM)"
        )
    problems += _pair_problems(settings, "database_sslcert", "database_sslkey")
    return problems + _missing_files(settings, tls_files)


def _pair_problems(settings: Settings, cert: str, key: str) -> list[str]:
    if (getattr(settings, cert) is None) == (getattr(settings, key) is None):
        return []
    given, missing = (cert, key) if getattr(settings, key) is None else (key, cert)
    return [f"{missing}: {given} is set; a client certificate needs both {cert} and {key}"]


def _with_parameters(dsn: str, params: Mapping[str, str]) -> str:
    """`dsn` (a postgresql:// URL or libpq key=value words) with `params` set, replacing the
    same keys: in a URL's query, percent-quoted; as words, quoted by libpq's rules."""
    if not params:
        return dsn
    if re.match(r"^postgres(ql)?://", dsn):
        parts = urlsplit(dsn)
        # The URL's own pairs are kept exactly as written (decoded and encoded again, a `+`
        # would become a space, which libpq does not read it as); only the keys set are dropped.
        kept = [
            pair for pair in parts.query.split("&") if pair and unquote(pair.split("=", 1)[0]) not in params
        ]
        added = [f"{quote(k, safe='')}={quote(v, safe='')}" for k, v in params.items()]
        return urlunsplit(parts._replace(query="&".join(kept + added)))
    words = " ".join(f"{k}='{_libpq_quoted(v)}'" for k, v in params.items())
    return f"{dsn} {words}" if dsn.strip() else words  # libpq: a later keyword wins


def _libpq_quoted(value: str) -> str:
    return value.replace("\\", "\\\\").replace("'", "\\'")


def secret_environment(settings: Settings) -> dict[str, str]:
    """The environment that hands `settings`' secrets to a child process beside a settings file
    written from `model_dump(mode="json")`, which never holds them: each secret given as a
    value, as its `SHRINKWATCH_` variable (one given as `${VAR}` is in that file, and the child
    reads VAR from the environment it inherits)."""
    out = {}
    for name in SECRET_SETTINGS:
        text = _plain(getattr(settings, name))
        if text and not placeholders(text):
            out[f"SHRINKWATCH_{name.upper()}"] = text
    return out


def write_settings_file(settings: Settings, path: Path) -> Path:
    """Write `settings` to a YAML settings file a child process can read (without the secrets
    given as values: see secret_environment)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(yaml.safe_dump(settings.model_dump(mode="json", exclude_none=True), sort_keys=True))
    return path


def child_environment(settings: Settings, path: Path, keep: tuple[str, ...] = ()) -> dict[str, str]:
    """The environment for a child `shrinkwatch` process that must see exactly `settings`:
    they are written to `path` (write_settings_file) and named by SHRINKWATCH_SETTINGS_FILE,
    the secrets travel as variables, and no other SHRINKWATCH_ variable of this process
    reaches it but those in `keep`. Output unbuffered, for whoever reads it line by line."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("SHRINKWATCH_") or k in keep}
    env["SHRINKWATCH_SETTINGS_FILE"] = str(write_settings_file(settings, path))
    env["PYTHONUNBUFFERED"] = "1"
    env.update(secret_environment(settings))
    return env


def load_settings(path: Path | None = None, **overrides: Any) -> Settings:
    """Build settings from an optional YAML file, the environment and explicit overrides.

    Precedence: overrides > environment > file > defaults. Raises ConfigError naming the key
    (or the environment variable), whatever the file or the environment holds.
    """
    values: dict[str, Any] = {}
    if path is not None:
        values.update(_read_settings_file(path))
    where = f"{path}: " if path else ""
    try:
        settings = Settings(**values)
        if overrides:
            settings = Settings.model_validate({**settings.model_dump(), **overrides})
    except ValidationError as exc:
        msg = f"{where}invalid settings:\n{format_validation_error(exc, prefix='')}"
        raise ConfigError(msg) from exc
    except SettingsError as exc:  # an environment variable of a list setting that is not JSON
        msg = f'{where}invalid settings: {exc}: a list is written as JSON, e.g. ["person", "handbag"]'
        field = re.search(r'field "(\w+)"', str(exc))
        if field:
            msg = f"SHRINKWATCH_{field.group(1).upper()}: {msg}"
        raise ConfigError(msg) from exc
    return settings


def _read_settings_file(path: Path) -> dict[str, Any]:
    """A settings file's setting names and values; ConfigError saying what is wrong and where."""
    try:
        _node, loaded = read_yaml(path.read_text(encoding="utf-8"))
    except (OSError, ValueError, yaml.YAMLError) as exc:  # ValueError: not UTF-8, aliases, nesting
        msg = f"cannot read settings file {path}: {exc}"
        raise ConfigError(msg) from exc
    loaded = loaded or {}
    if not isinstance(loaded, dict):
        msg = f"{path}: the settings file must be a mapping of setting names to values"
        raise ConfigError(msg)
    problems = [f"{key!r}: a setting's name is text" for key in loaded if not isinstance(key, str)]
    problems += [f"{key}: {problem}" for key, problem in unstorable_text(loaded)]
    if problems:
        msg = f"{path}: invalid settings:\n" + "\n".join(f"  {p}" for p in problems)
        raise ConfigError(msg)
    return loaded
