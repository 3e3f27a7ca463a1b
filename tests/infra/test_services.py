"""`shrinkwatch infra up | status | down` with its own home and ports."""

from __future__ import annotations

import shutil
import socket
from pathlib import Path

import pytest

from infra import services
from infra.kafka import KafkaBroker
from shrinkwatch.errors import ShrinkwatchError
from shrinkwatch.settings import Settings, load_settings
from tests.support import TEST_HOME, free_port, run_cli


def own_settings(tmp_path: Path) -> Settings:
    # Under the suite's home, not tmp_path: the `postgres` user must be able to reach it.
    # Ports picked free now: fixed ones in the ephemeral range collide with client sockets.
    home = TEST_HOME / f"infra-{tmp_path.name}"
    shutil.rmtree(home, ignore_errors=True)
    return load_settings(
        None, home=home, kafka_port=free_port(), kafka_controller_port=free_port(), postgres_port=free_port()
    )


def env_for(settings: Settings) -> dict[str, str]:
    import os

    env = {k: v for k, v in os.environ.items() if not k.startswith("SHRINKWATCH_")}
    env.update(
        SHRINKWATCH_HOME=str(settings.home),
        SHRINKWATCH_KAFKA_PORT=str(settings.kafka_port),
        SHRINKWATCH_KAFKA_CONTROLLER_PORT=str(settings.kafka_controller_port),
        SHRINKWATCH_POSTGRES_PORT=str(settings.postgres_port),
    )
    return env


@pytest.mark.usefixtures("base_settings")  # the jars are resolved once, by the session
def test_up_status_down_cycle(tmp_path: Path) -> None:
    settings = own_settings(tmp_path)
    env = env_for(settings)
    try:
        up = run_cli(["infra", "up"], env=env, timeout=240)
        assert up.returncode == 0, up.stderr
        assert f"kafka      healthy  127.0.0.1:{settings.kafka_port}" in up.stdout
        assert "postgres   healthy" in up.stdout
        assert "created topics: sw.detections, sw.camera-health, sw.incidents, sw.dlq" in up.stderr

        again = run_cli(["infra", "up"], env=env, timeout=120)
        assert again.returncode == 0
        assert "already running" in again.stderr and "created topics" not in again.stderr

        status = run_cli(["infra", "status"], env=env)
        assert status.returncode == 0 and status.stdout.count("healthy") == 2

        # A stale pid file (the process is gone) is recognised as stale.
        broker = KafkaBroker(settings)
        real_pid = broker.running_pid()
        assert real_pid is not None
    finally:
        down = run_cli(["infra", "down"], env=env, timeout=120)
    assert down.returncode == 0 and "stopped: kafka, postgres" in down.stdout
    status = run_cli(["infra", "status"], env=env)
    assert status.returncode == 1 and status.stdout.count("DOWN") == 2
    broker.pidfile.write(real_pid)
    assert broker.running_pid() is None and not broker.pidfile.path.exists()
    assert run_cli(["infra", "down"], env=env).stdout.strip() == "nothing was running"


def test_port_taken_gives_a_clear_message(tmp_path: Path) -> None:
    settings = own_settings(tmp_path)
    with socket.socket() as sock:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.bind(("127.0.0.1", settings.postgres_port))
        sock.listen()
        with pytest.raises(
            ShrinkwatchError, match=f"{settings.postgres_port} on 127.0.0.1 is already in use"
        ):
            services.up(settings, progress=lambda _m: None)
        result = run_cli(["infra", "up"], env=env_for(settings))
    assert result.returncode == 2
    assert "already in use" in result.stderr and "Traceback" not in result.stderr


def test_external_services_are_not_started(base_settings: Settings, tmp_path: Path) -> None:
    settings = load_settings(
        None,
        home=tmp_path / "ext",
        kafka_bootstrap=base_settings.kafka_servers,
        database_url=base_settings.database_dsn,
        topic_prefix=base_settings.topic_prefix,  # the session's topics, which it deletes
    )
    assert services.up(settings, progress=lambda _m: None) == []
    assert not (tmp_path / "ext" / "kafka").exists() and not (tmp_path / "ext" / "postgres").exists()
    assert all(s.healthy and not s.managed for s in services.status(settings))


def test_a_cluster_id_never_looks_like_an_option() -> None:
    from infra.kafka import new_cluster_id

    # One random id in 64 starts with "-", which the storage tool took for an option.
    ids = [new_cluster_id() for _ in range(2000)]
    assert [i for i in ids if i.startswith("-")] == []
    assert len(set(ids)) == 2000 and {len(i) for i in ids} == {22}
