"""The deployment files (infra/deploy, docs/DEPLOY.md) run commands that exist.

Nothing here starts systemd or Docker (neither runs on the test machine); what can be checked
without them is:

- every systemd unit parses, restarts what dies, runs as the dedicated user with the secrets'
  EnvironmentFile and the hardening, and `systemd-analyze verify` has nothing to say about it
  (where systemd-analyze is installed);
- every Shrinkwatch command in a unit's ExecStart, in a compose service and in DEPLOY.md's
  shell blocks is a real command of the installed `shrinkwatch`, with options its `--help`
  lists and, for an option with a set of choices, one of them: a renamed command, option or
  role fails here;
- the per-service units and the chain's compose file run every service `shrinkwatch run`
  supervises, so a new service cannot be forgotten;
- both compose files load, every service has an image or a build, a restart policy and a
  healthcheck (one-shot jobs: restart on failure, awaited by the services); the official
  Kafka 4 and PostgreSQL 15 images; no `$` that compose would take for a host variable; the
  chain's three brokers agree on their voters;
- the image copies every package the project installs and installs a pip extra that
  pyproject.toml defines; every `SHRINKWATCH_` variable named anywhere is a setting, and the
  example environment file loads as settings.
"""

from __future__ import annotations

import base64
import functools
import os
import re
import shlex
import shutil
import subprocess
import sys
import tomllib
from pathlib import Path
from typing import Any

import pytest
import yaml

from infra.supervisor import CENTRAL, STORE
from shrinkwatch.settings import Settings, load_settings

ROOT = Path(__file__).resolve().parents[2]
DEPLOY = ROOT / "infra" / "deploy"
UNITS = DEPLOY / "systemd"
COMPOSE_FILES = (DEPLOY / "compose.yaml", DEPLOY / "compose.chain.yaml")
INSTALLED = "/opt/shrinkwatch/venv/bin/shrinkwatch"  # where DEPLOY.md installs the command
HOME = "/var/lib/shrinkwatch"
EVIDENCE_MOUNTS = {f"{HOME}/evidence", f"{HOME}/live"}

# The instances each template unit is documented with (its header and docs/DEPLOY.md).
INSTANCES = {
    "shrinkwatch-run@.service": ("all", "store", "central"),
    "shrinkwatch-detect@.service": ("0-2", "1-2"),
    "shrinkwatch-flow@.service": ("incidents", "occupancy", "health"),
}
# Units whose service reads or writes the evidence and live folders (shared on a chain).
EVIDENCE_UNITS = {
    "shrinkwatch-run@.service",
    "shrinkwatch-detect@.service",
    "shrinkwatch-privacy.service",
    "shrinkwatch-alerts.service",
    "shrinkwatch-dashboard.service",
    "shrinkwatch-api.service",
}


# --- systemd units -------------------------------------------------------------------------


def parse_unit(text: str) -> dict[str, dict[str, list[str]]]:
    """A unit file as {section: {key: [values, in order]}} (keys may repeat, as in systemd)."""
    sections: dict[str, dict[str, list[str]]] = {}
    current: dict[str, list[str]] | None = None
    for number, raw in enumerate(text.splitlines(), 1):
        line = raw.strip()
        if not line or line.startswith(("#", ";")):
            continue
        if line.startswith("[") and line.endswith("]"):
            current = sections.setdefault(line[1:-1], {})
            continue
        key, sep, value = line.partition("=")
        if current is None or not sep or not key.strip():
            msg = f"line {number}: {raw!r} is neither a section nor Key=Value"
            raise ValueError(msg)
        current.setdefault(key.strip(), []).append(value.strip())
    return sections


def unescape_instance(instance: str) -> str:
    """systemd's %I: the instance name unescaped (`-` is `/`, `\\xNN` a byte)."""
    text = instance.replace("-", "/")
    return re.sub(r"\\x([0-9a-fA-F]{2})", lambda m: chr(int(m.group(1), 16)), text)


def expand(value: str, instance: str | None) -> str:
    """A unit value with the instance specifiers %i and %I filled in."""
    if instance is None:
        assert "%i" not in value and "%I" not in value, f"{value!r} names an instance in a plain unit"
        return value
    return value.replace("%I", unescape_instance(instance)).replace("%i", instance)


def unit_files() -> list[Path]:
    return sorted(p for p in UNITS.iterdir() if p.suffix in (".service", ".target"))


def shrinkwatch_services() -> list[Path]:
    return [p for p in unit_files() if p.name.startswith("shrinkwatch-") and p.suffix == ".service"]


def exec_starts(path: Path) -> list[tuple[str, ...]]:
    """Each ExecStart of a unit as argv, once per documented instance of a template."""
    unit = parse_unit(path.read_text())
    instances: tuple[str | None, ...] = INSTANCES[path.name] if "@." in path.name else (None,)
    return [tuple(expand(v, i).split()) for v in unit["Service"]["ExecStart"] for i in instances]


# --- the installed command's help ----------------------------------------------------------


def shrinkwatch_command() -> list[str]:
    script = Path(sys.executable).with_name("shrinkwatch")
    return [str(script)] if script.exists() else [sys.executable, "-m", "cli"]


@functools.cache
def help_of(path: tuple[str, ...]) -> tuple[int, str]:
    """`shrinkwatch PATH --help`: its exit code and output, wide enough that nothing is cut."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("SHRINKWATCH_")}
    env.update(COLUMNS="300", NO_COLOR="1", TERM="dumb")
    done = subprocess.run(
        [*shrinkwatch_command(), *path, "--help"], capture_output=True, text=True, env=env, timeout=120
    )
    return done.returncode, done.stdout + done.stderr


def panel(help_text: str, title: str) -> list[str]:
    """The rows of one panel of a help page (`Options`, `Arguments`, `Commands`), each without
    its frame and without the `*` that marks a required one."""
    rows, inside = [], False
    for raw in help_text.splitlines():
        line = raw.strip()
        if line.startswith("╭─"):
            inside = line.startswith(f"╭─ {title} ")
        elif line.startswith("╰"):
            inside = False
        elif inside:
            rows.append(line.strip("│").strip().lstrip("*").strip())
    return rows


def options_in(help_text: str) -> dict[str, str]:
    """The options a help page lists: {name: the type or metavar shown beside it, `<bool>` for
    a flag}. A row is `--name [--other-name] [-n]  <type> or METAVAR  description`."""
    options: dict[str, str] = {}
    for line in panel(help_text, "Options"):
        names, rest = [], line
        while rest.startswith("-"):
            name, _, rest = rest.partition(" ")
            names.append(name)
            rest = rest.lstrip()
        kind = re.match(r"<[^>]*>|\S+", rest)
        for name in names:
            options[name] = kind.group(0) if kind else "<bool>"
    return options


def arguments_in(help_text: str) -> list[str]:
    """The positional arguments a help page lists, by name."""
    return [m.group(1) for line in panel(help_text, "Arguments") if (m := re.match(r"(\w+)\s+<", line))]


def hidden_options(path: tuple[str, ...]) -> dict[str, str]:
    """The options of `shrinkwatch PATH` that its help does not show (typer's hidden=True), read
    from the command itself: {name: `<bool>` for a flag, else `<value>`}. (Typer may bring its
    own copy of click: the objects are read by their attributes.)"""
    import typer.main

    from cli.main import app

    command: Any = typer.main.get_command(app)
    for name in path:
        command = command.get_command(command.context_class(command), name)
        assert command is not None, path
    return {
        opt: "<bool>" if param.is_flag else "<value>"
        for param in command.params
        if param.param_type_name == "option" and param.hidden
        for opt in (*param.opts, *param.secondary_opts)
    }


def check_command(args: tuple[str, ...] | list[str], *, named: bool = True) -> list[str]:
    """What is wrong with `shrinkwatch ARGS` as the installed command reads it: a command that
    does not exist, an option its help does not list, a choice not among its choices, more
    positional arguments than it takes or, with `named`, one its help does not name (a flow's
    name; `named=False` for free values such as a file). [] when nothing is."""
    path: list[str] = []
    problems: list[str] = []
    positionals: list[str] = []
    tokens = list(args)
    while tokens:
        code, text = help_of(tuple(path))
        if code != 0:
            return [f"`shrinkwatch {' '.join(path)}` is not a command: {text.strip()[-300:]}"]
        assert "Options" in text, f"unexpected help format for {path}:\n{text}"
        group = bool(re.search(r"Usage: .*COMMAND", text))
        token = tokens.pop(0)
        if token.startswith("-"):
            name = token.split("=", 1)[0]
            known = options_in(text) | hidden_options(tuple(path))
            if name not in known:
                problems.append(f"`shrinkwatch {' '.join(path)}` has no option {name}")
                continue
            kind = known[name]
            if kind != "<bool>" and "=" not in token:
                value = tokens.pop(0) if tokens else ""
                choices = kind.strip("<>").split("|") if "|" in kind else None
                if choices and value not in choices:
                    problems.append(f"{name} {value!r} is not one of {choices}")
        elif group:
            path.append(token)
        else:
            positionals.append(token)
            if named and not re.search(rf"\b{re.escape(token)}\b", text):
                problems.append(f"`shrinkwatch {' '.join(path)}`'s help does not name {token!r}")
    code, text = help_of(tuple(path))
    if code != 0 or re.search(r"Usage: .*COMMAND", text):
        problems.append(f"`shrinkwatch {' '.join(args)}` does not name a command to run")
    elif len(positionals) > len(arguments_in(text)):
        problems.append(f"`shrinkwatch {' '.join(path)}` takes {arguments_in(text)}, not {positionals}")
    return problems


def test_the_command_check_catches_what_it_is_for() -> None:
    assert check_command(("flows", "run", "incidents")) == []
    assert check_command(("run", "--role", "central")) == []
    assert check_command(("--settings", "/etc/x.yaml", "rollups", "run", "--schedule")) == []
    assert check_command(("rollups", "run", "--shedule"))  # a misspelt option
    assert check_command(("run", "--role", "shop"))  # not a role
    assert check_command(("flow", "run"))  # not a command
    assert check_command(("flows", "run", "incidence"))  # not a flow the help names
    assert check_command(("flows",))  # a group, not a command
    assert check_command(("flows", "run", "incidents", "--process-id", "0", "--addresses", "a:1;b:1")) == []
    assert check_command(("users", "add", "ana", "--role", "admin"), named=False) == []  # a required option
    assert check_command(("users", "add", "ana", "bob", "--role", "admin"), named=False)  # one name only


# --- systemd tests -------------------------------------------------------------------------


def test_every_template_has_documented_instances() -> None:
    templates = {p.name for p in unit_files() if "@." in p.name}
    assert templates == set(INSTANCES)


@pytest.mark.parametrize("path", unit_files(), ids=lambda p: p.name)
def test_unit_parses_and_restarts_what_dies(path: Path) -> None:
    unit = parse_unit(path.read_text())
    if path.suffix == ".target":
        assert "Install" in unit
        return
    service = unit["Service"]
    # A camera reader whose shard holds no camera exits 0: restarting it would loop.
    restart = "on-failure" if path.name == "shrinkwatch-detect@.service" else "always"
    assert service["Restart"] == [restart]
    assert float(service["RestartSec"][0]) > 0
    assert service["User"][0] not in ("root", "0", "nobody")
    assert unit["Unit"]["StartLimitIntervalSec"] == ["0"], "systemd must never give up restarting it"
    assert service["NoNewPrivileges"] == ["yes"]
    assert service["ProtectSystem"] == ["strict"]
    assert service["PrivateTmp"] == ["yes"]
    assert service["ReadWritePaths"]
    assert "network-online.target" in " ".join(unit["Unit"]["After"])
    assert "network-online.target" in " ".join(unit["Unit"]["Wants"])


@pytest.mark.parametrize("path", shrinkwatch_services(), ids=lambda p: p.name)
def test_shrinkwatch_unit_runs_as_deployed(path: Path) -> None:
    unit = parse_unit(path.read_text())
    service = unit["Service"]
    assert service["User"] == ["shrinkwatch"]
    assert service["EnvironmentFile"] == ["/etc/shrinkwatch/env"]
    assert service["WorkingDirectory"] == [HOME]
    assert f"SHRINKWATCH_HOME={HOME}" in service["Environment"]
    assert HOME in service["ReadWritePaths"][0].split()
    assert service["ProtectHome"] == ["yes"]
    for after in ("kafka.service", "postgresql.service"):
        assert after in " ".join(unit["Unit"]["After"]) and after in " ".join(unit["Unit"]["Wants"])
    assert unit["Unit"]["PartOf"] == ["shrinkwatch.target"]
    assert unit["Install"]["WantedBy"] == ["shrinkwatch.target"]
    mounts = set(" ".join(unit["Unit"].get("RequiresMountsFor", [])).split())
    assert (mounts >= EVIDENCE_MOUNTS) == (path.name in EVIDENCE_UNITS)
    for argv in exec_starts(path):
        assert argv[0] == INSTALLED
        assert check_command(argv[1:]) == []


def test_the_supervisor_unit_stops_its_services_itself() -> None:
    service = parse_unit((UNITS / "shrinkwatch-run@.service").read_text())["Service"]
    assert service["KillMode"] == ["mixed"]  # SIGTERM to the supervisor alone: it stops the rest
    assert float(service["TimeoutStopSec"][0]) > 2 * 20  # two waves, each SIGKILLed after 20 s


def test_per_service_units_cover_every_supervised_service() -> None:
    started = [argv[1:] for path in shrinkwatch_services() for argv in exec_starts(path)]
    for supervised in CENTRAL + STORE:
        assert any(argv[: len(supervised.args)] == supervised.args for argv in started), supervised


def test_each_unit_is_as_nice_as_the_supervisor_makes_its_service() -> None:
    nice = {}
    for path in shrinkwatch_services():
        for argv in exec_starts(path):
            nice[argv[1:]] = int(parse_unit(path.read_text())["Service"].get("Nice", ["0"])[0])
    for supervised in CENTRAL + STORE:
        units = {v for argv, v in nice.items() if argv[: len(supervised.args)] == supervised.args}
        assert units == {supervised.nice}, supervised


def test_systemd_analyze_verify_has_nothing_to_say(tmp_path: Path) -> None:
    analyze = shutil.which("systemd-analyze")
    if analyze is None:
        pytest.skip("systemd-analyze is not installed")
    # The programs as installed on this machine (verify checks that ExecStart is executable).
    local = {INSTALLED: shrinkwatch_command()[0], "/opt/kafka/bin/kafka-server-start.sh": "/bin/sh"}
    names = []
    for path in unit_files():
        text = path.read_text()
        for installed, here in local.items():
            text = text.replace(installed, here)
        (tmp_path / path.name).write_text(text)
        instances = INSTANCES.get(path.name)
        names += [path.name.replace("@.", f"@{i}.") for i in instances] if instances else [path.name]
    done = subprocess.run(
        [analyze, "verify", "--man=no", "--generators=no", *(str(tmp_path / n) for n in names)],
        capture_output=True,
        text=True,
        timeout=120,
    )
    said = [line for line in (done.stdout + done.stderr).splitlines() if line.strip()]
    assert said == [] and done.returncode == 0, "\n".join(said)


# --- compose files -------------------------------------------------------------------------


def load_compose(path: Path) -> dict[str, Any]:
    loaded = yaml.safe_load(path.read_text())
    assert isinstance(loaded, dict) and isinstance(loaded.get("services"), dict)
    return loaded


def is_shrinkwatch(service: dict[str, Any]) -> bool:
    return service.get("build", {}).get("dockerfile") == "infra/deploy/Dockerfile"


@pytest.mark.parametrize("path", COMPOSE_FILES, ids=lambda p: p.name)
def test_compose_services_restart_and_report_health(path: Path) -> None:
    services = load_compose(path)["services"]
    awaited = {
        name
        for s in services.values()
        for name, dep in (s.get("depends_on") or {}).items()
        if isinstance(dep, dict) and dep.get("condition") == "service_completed_successfully"
    }
    for name, service in services.items():
        assert "image" in service or "build" in service, name
        health = service.get("healthcheck")
        assert health, f"{name} has no healthcheck"
        if health.get("disable"):  # a one-shot job: retried until it succeeds, then awaited
            assert service["restart"] == "on-failure", name
            assert name in awaited, f"nothing waits for the one-shot job {name}"
        else:  # a camera reader with no camera exits 0: not restarted (on-failure)
            wanted = ("on-failure",) if service.get("command", [""])[0] == "detect" else ("unless-stopped",)
            assert service["restart"] in wanted, name
            assert health["test"][0] in ("CMD", "CMD-SHELL"), name
        if is_shrinkwatch(service):
            assert (DEPLOY / service["build"]["context"] / service["build"]["dockerfile"]).resolve() == (
                DEPLOY / "Dockerfile"
            )
            assert service["env_file"], f"{name}: the secrets come from an env file"
            assert not [k for k in service.get("environment", {}) if "PASSWORD" in k or "SECRET" in k]
            assert check_command(service["command"]) == [], name


def strings_in(value: object) -> list[str]:
    """Every string in a loaded YAML document, keys included."""
    if isinstance(value, dict):
        return [s for k, v in value.items() for s in (*strings_in(k), *strings_in(v))]
    if isinstance(value, list):
        return [s for v in value for s in strings_in(v)]
    return [value] if isinstance(value, str) else []


@pytest.mark.parametrize("path", COMPOSE_FILES, ids=lambda p: p.name)
def test_compose_interpolates_nothing(path: Path) -> None:
    # Compose reads `$X` and `${X}` as the host's variables (and refuses `$(`): a value that
    # needs a `$` writes `$$`; settings and secrets come from the env files, not the host.
    assert [s for s in strings_in(load_compose(path)) if "$" in s.replace("$$", "")] == []


@pytest.mark.parametrize("path", COMPOSE_FILES, ids=lambda p: p.name)
def test_compose_uses_the_official_images(path: Path) -> None:
    images = {s["image"] for s in load_compose(path)["services"].values() if not is_shrinkwatch(s)}
    assert images == {"apache/kafka:4.1.1", "postgres:15"}


def test_chain_compose_is_three_brokers_replicating_three_times() -> None:
    services = load_compose(DEPLOY / "compose.chain.yaml")["services"]
    kafka = {n: s for n, s in services.items() if s.get("image", "").startswith("apache/kafka")}
    brokers = {n: s["environment"] for n, s in kafka.items()}
    assert len(brokers) == 3
    assert len({env["KAFKA_NODE_ID"] for env in brokers.values()}) == 3
    voters = {env["KAFKA_CONTROLLER_QUORUM_VOTERS"] for env in brokers.values()}
    assert voters == {",".join(f"{e['KAFKA_NODE_ID']}@{n}:9093" for n, e in sorted(brokers.items()))}
    cluster = {env["CLUSTER_ID"] for env in brokers.values()}
    assert len(cluster) == 1 and len(base64.urlsafe_b64decode(cluster.pop() + "==")) == 16
    for name, service in services.items():
        if is_shrinkwatch(service):
            env = service["environment"]
            assert int(env["SHRINKWATCH_TOPIC_REPLICATION"]) == 3, name
            assert set(env["SHRINKWATCH_KAFKA_BOOTSTRAP"].split(",")) == {f"{n}:9092" for n in brokers}
    commands = [tuple(s["command"]) for s in services.values() if is_shrinkwatch(s)]
    for supervised in CENTRAL + STORE:
        assert any(c[: len(supervised.args)] == supervised.args for c in commands), supervised
    readers = sorted(c for c in commands if c[0] == "detect")
    assert readers == [("detect", "--shard", "0/2"), ("detect", "--shard", "1/2")]


# --- the image and the settings ------------------------------------------------------------


def test_image_installs_the_project_and_a_defined_extra() -> None:
    dockerfile = (DEPLOY / "Dockerfile").read_text()
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())
    packages = {p.rstrip("*") for p in project["tool"]["setuptools"]["packages"]["find"]["include"]}
    copied = set(re.findall(r"^COPY (\w+) \./\1$", dockerfile, re.MULTILINE))
    assert copied == packages
    kept = set(re.findall(r"^!(\w+)/$", (DEPLOY / "Dockerfile.dockerignore").read_text(), re.MULTILINE))
    assert kept == packages
    assert re.findall(r"^FROM .*$", dockerfile, re.MULTILINE) == ["FROM python:3.11-slim"]
    entry = re.search(r'^ENTRYPOINT \["shrinkwatch"\]$', dockerfile, re.MULTILINE)
    default = re.search(r"^CMD \[(.*)\]$", dockerfile, re.MULTILINE)
    assert entry and default
    assert check_command([a.strip().strip('"') for a in default.group(1).split(",")]) == []
    extras = re.findall(r'pip install [^"\n]*"\.\[([\w,]+)\]"', dockerfile)
    assert extras, "the Dockerfile installs the project with an extra"
    defined = set(project["project"].get("optional-dependencies", {}))
    for extra in {e for group in extras for e in group.split(",")}:
        assert extra in defined, f"pyproject.toml has no extra {extra!r}"


def setting_names(text: str) -> set[str]:
    return {m.lower() for m in re.findall(r"\bSHRINKWATCH_([A-Z0-9_]+)\b", text)}


@pytest.mark.parametrize(
    "path",
    [DEPLOY / "env.example", DEPLOY / "Dockerfile", *COMPOSE_FILES, *shrinkwatch_services()],
    ids=lambda p: p.name,
)
def test_every_variable_named_is_a_setting(path: Path) -> None:
    unknown = setting_names(path.read_text()) - set(Settings.model_fields) - {"settings_file"}
    assert unknown == set()


def test_example_environment_file_loads_as_settings(monkeypatch: pytest.MonkeyPatch) -> None:
    values = {}
    for line in (DEPLOY / "env.example").read_text().splitlines():
        if line and not line.startswith("#"):
            name, sep, value = line.partition("=")
            assert sep and name == name.strip() and not value.startswith(("'", '"')), line
            values[name] = value
    for var in list(os.environ):
        if var.startswith("SHRINKWATCH_"):
            monkeypatch.delenv(var)
    for name, value in values.items():
        monkeypatch.setenv(name, value)
    settings = load_settings(None)
    assert str(settings.home) == HOME
    assert str(settings.evidence_dir()) == f"{HOME}/evidence"
    assert settings.kafka_servers == "127.0.0.1:9092"


# --- docs/DEPLOY.md ------------------------------------------------------------------------

# How DEPLOY.md's shell blocks run `shrinkwatch`: its `sw` function, the venv's program, and
# the compose services.
DOC_PREFIXES = (
    ("sw",),
    (INSTALLED,),
    ("docker", "compose", "run", "--rm", "shrinkwatch"),
    ("docker", "compose", "exec", "shrinkwatch", "shrinkwatch"),
)


def doc_commands(markdown: str) -> list[list[str]]:
    """The `shrinkwatch` commands in a document's bash blocks and its drop-ins' ExecStart=, as
    argv after the program (continued lines joined, comments dropped; `&&` and `;` split
    commands)."""
    commands = []
    for block in re.findall(r"```(?:bash|ini)\n(.*?)```", markdown, re.DOTALL):
        for line in block.replace("\\\n", " ").splitlines():
            line = line.removeprefix("ExecStart=")  # a drop-in's command
            if line.lstrip().startswith("sw()"):
                continue  # the function's own definition
            lexer = shlex.shlex(line, posix=True, punctuation_chars=True)
            lexer.whitespace_split = True
            words: list[str] = []
            for word in [*lexer, ";"]:
                if word not in ("&&", "||", ";", "|"):
                    words.append(word)
                    continue
                for prefix in DOC_PREFIXES:
                    if tuple(words[: len(prefix)]) == prefix:
                        commands.append(words[len(prefix) :])
                words = []
    return commands


def test_deploy_doc_runs_real_commands() -> None:
    commands = doc_commands((ROOT / "docs" / "DEPLOY.md").read_text())
    assert ["db", "migrate"] in commands and ["status"] in commands  # the doc is read as meant
    for argv in commands:
        assert check_command(argv, named=False) == [], argv
