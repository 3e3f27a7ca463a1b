"""`shrinkwatch run`: keep a store's (or a chain centre's) services running.

The supervisor starts each service of its role as a child process (`python -m cli ...`, the
same commands a person would run), and then:

- **restarts what dies**, after a backoff that starts at 1 s and doubles to 60 s, and starts
  again at 1 s once a service has stayed up for 60 s; it says why the service died (its exit
  code or the signal, and its last line of output);
- **waits for what the services need**: while Kafka or PostgreSQL does not answer, nothing is
  (re)started (said once, and once when they are back; a running service rides the outage
  out itself, shrinkwatch.outage), so a service is not restarted into a failure;
- **keeps each service's output** in `<home>/logs/<service>.log`, rotated at 10 MiB (three
  old files kept), so a box that runs for months does not fill its disk;
- **stops everything cleanly** on SIGINT/SIGTERM, in the reverse order of starting (cameras
  first, so the flows see their last frames): SIGTERM, then SIGKILL after 20 s;
- **writes its state** to `<home>/run/status.json` every 2 s (and at each change), which
  `shrinkwatch status` reads: for each service, its state, pid, up since, restarts, last
  exit and last error.

Children die with the supervisor (PR_SET_PDEATHSIG on Linux): a supervisor killed with -9
leaves no camera reader behind to publish every frame twice beside its replacement. The
signal comes when the *thread* that started a child ends, so one thread drives a supervisor
from `start()` to `stop()`. One supervisor per home (a lock in `<home>/run/`).
"""

from __future__ import annotations

import collections
import contextlib
import ctypes
import fcntl
import json
import os
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import IO, Any

from shrinkwatch.errors import ShrinkwatchError
from shrinkwatch.outage import Outage

Say = Callable[[str], None]

FIRST_BACKOFF_S = 1.0
LONGEST_BACKOFF_S = 60.0
STEADY_S = 60.0  # up this long, a service's next failure starts the backoff again from 1 s
STOP_TIMEOUT_S = 20.0
LOG_BYTES = 10 * 1024 * 1024
LOG_KEEP = 3
STATUS_EVERY_S = 2.0
LOCK_WAIT_S = 30.0
ROLES = ("store", "central", "all")


@dataclass(frozen=True)
class Service:
    """A service: a name, the `shrinkwatch` command that runs it, and its niceness."""

    name: str
    args: tuple[str, ...]
    nice: int = 0


# Work that can wait yields the CPU to work that cannot (`nice`): on a store box the cameras,
# the flows and the alerts keep the cores they need while a rollup, a purge or the dashboard
# drawing a page takes what is left; they run as fast as before on an idle box.
BACKGROUND = 10
# In start order; stopped in reverse. The cameras come last: the flows are there to read them.
CENTRAL = (
    Service("incidents-flow", ("flows", "run", "incidents")),
    Service("occupancy-flow", ("flows", "run", "occupancy")),
    Service("health-flow", ("flows", "run", "health")),
    Service("calibration", ("flows", "calibrate", "--schedule"), BACKGROUND),
    Service("rollups", ("rollups", "run", "--schedule"), BACKGROUND),
    Service("privacy", ("privacy", "purge", "--schedule"), BACKGROUND),
    Service("alerts", ("alerts", "run")),
    Service("dashboard", ("app",), BACKGROUND),
    Service("api", ("api",), BACKGROUND),
)
STORE = (Service("cameras", ("detect",)),)


def services_of(role: str) -> tuple[Service, ...]:
    """The services a role runs: `store` the camera readers, `central` the flows, schedulers,
    alerts, dashboard and API, `all` both (one box for everything)."""
    if role == "store":
        return STORE
    if role == "central":
        return CENTRAL
    if role == "all":
        return CENTRAL + STORE
    msg = f"unknown role {role!r}; give one of {', '.join(ROLES)}"
    raise ShrinkwatchError(msg)


class RotatingLog:
    """A log file that moves to `.1` (then `.2`, ...) at `max_bytes`, keeping `keep` old ones."""

    def __init__(self, path: Path, max_bytes: int = LOG_BYTES, keep: int = LOG_KEEP) -> None:
        self.path, self._max, self._keep = path, max_bytes, keep
        path.parent.mkdir(parents=True, exist_ok=True)
        self._file: IO[bytes] = path.open("ab")

    def write(self, line: bytes) -> None:
        self._file.write(line)
        self._file.flush()
        if self._file.tell() >= self._max:
            self._rotate()

    def _rotate(self) -> None:
        self._file.close()
        for n in range(self._keep - 1, 0, -1):
            older = self.path.with_name(f"{self.path.name}.{n}")
            if older.exists():
                older.replace(self.path.with_name(f"{self.path.name}.{n + 1}"))
        self.path.replace(self.path.with_name(f"{self.path.name}.1"))
        self._file = self.path.open("ab")

    def close(self) -> None:
        self._file.close()


try:  # looked up here, not in the child between fork and exec (no loading a library there)
    _PRCTL: Callable[..., int] | None = ctypes.CDLL(None, use_errno=True).prctl
except (OSError, AttributeError):  # not Linux
    _PRCTL = None


def _die_with_parent(parent: int, nice: int = 0) -> Callable[[], None]:
    def prepare() -> None:  # pragma: no cover (runs in the child, before exec)
        if _PRCTL is not None:
            _PRCTL(1, signal.SIGTERM)  # PR_SET_PDEATHSIG: SIGTERM when the supervisor dies
        if os.getppid() != parent:  # it died before the line above
            os._exit(1)
        if nice:
            os.nice(nice)

    return prepare


def exit_reason(returncode: int) -> str:
    """`exit code 1`, or `killed by SIGKILL`."""
    if returncode < 0:
        try:
            return f"killed by {signal.Signals(-returncode).name}"
        except ValueError:
            return f"killed by signal {-returncode}"
    return f"exit code {returncode}"


def _now() -> str:
    return datetime.now(UTC).isoformat(timespec="seconds")


@dataclass
class Running:
    """One supervised service and what is known about it."""

    service: Service
    proc: subprocess.Popen[bytes] | None = None
    state: str = "not started"  # up | waiting to restart | waiting for <dependency> | stopped
    started_at: str | None = None  # wall time of the current run
    started: float = 0.0  # its monotonic time
    restarts: int = 0
    last_exit: str | None = None
    last_error: str | None = None
    next_start: float = 0.0
    backoff_s: float = FIRST_BACKOFF_S
    output: collections.deque[str] = field(default_factory=lambda: collections.deque(maxlen=30))
    pump: threading.Thread | None = None
    held: bool = False  # stopped for good (stop_service): not restarted

    def as_dict(self) -> dict[str, Any]:
        return {
            "name": self.service.name,
            "command": "shrinkwatch " + " ".join(self.service.args),
            "state": self.state,
            "pid": self.proc.pid if self.proc is not None and self.proc.poll() is None else None,
            "up_since": self.started_at if self.state == "up" else None,
            "restarts": self.restarts,
            "last_exit": self.last_exit,
            "last_error": self.last_error,
        }


def _last_error(lines: Iterable[str]) -> str | None:
    """The line of a dead service's output that says most about why: the last line that reads
    like an error, else the last line."""
    lines = [line for line in lines if line.strip()]
    for line in reversed(lines):
        lowered = line.lower()
        if any(word in lowered for word in ("error", "exception", "traceback", "failed", "cannot")):
            return line.strip()[:500]
    return lines[-1].strip()[:500] if lines else None


class Supervisor:
    """Starts, watches and restarts the services; see the module docstring.

    Drive it with `start()`, then `poll()` every fraction of a second (it reaps, restarts
    what is due and writes the status file), and `stop()`. `run_supervisor` does that until a
    signal; the demo calls `poll()` from its own loop.
    """

    def __init__(
        self,
        services: Sequence[Service],
        *,
        home: Path,
        logs: Path,
        env: Callable[[], dict[str, str]],
        role: str,
        say: Say,
        ready: Callable[[], str | None] = lambda: None,
        command: Sequence[str] = (sys.executable, "-m", "cli"),
    ) -> None:
        self._running = [Running(s) for s in services]
        self._home, self._logs, self._make_env, self._role = home, logs, env, role
        self._env: dict[str, str] = {}
        self._say, self._ready, self._command = say, ready, tuple(command)
        self._waiting = Outage("the services' dependencies", say)
        self._status_path = home / "run" / "status.json"
        self._next_status = 0.0
        self._started_at = _now()
        self._lock: IO[str] | None = None
        self._status_failed = False
        self.stopping = False

    @property
    def services(self) -> list[Running]:
        return self._running

    def start(self, wait_s: float = LOCK_WAIT_S) -> None:
        """Take the home's lock and start every service (or note why it must wait).

        The children hold the lock too (they inherit it): a supervisor that died is not
        replaced while a service it started still runs (one stuck in a write, say). A new
        one waits up to `wait_s` for them to go, then refuses."""
        lock_path = self._status_path.with_name("supervisor.lock")
        lock_path.parent.mkdir(parents=True, exist_ok=True)
        handle = lock_path.open("w")
        deadline = time.monotonic() + wait_s
        while True:
            try:
                fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
                break
            except BlockingIOError:
                if time.monotonic() >= deadline:
                    handle.close()
                    msg = (
                        f"another `shrinkwatch run` (or demo), or a service it started, still holds "
                        f"{self._home}; stop it first"
                    )
                    raise ShrinkwatchError(msg) from None
                time.sleep(0.5)
        self._lock = handle
        self._env = self._make_env()  # once the home is ours: it may write files there
        self.poll()

    def poll(self) -> None:
        """Reap what died, (re)start what is due, write the status file when it is time."""
        now = time.monotonic()
        changed = False
        for run in self._running:
            if run.proc is not None and run.proc.poll() is not None:
                self._died(run, now)
                changed = True
        due = [r for r in self._running if r.proc is None and not r.held and now >= r.next_start]
        if due and not self.stopping:
            problem = self._ready()
            if problem is not None:
                self._waiting.failed(problem)
                for run in due:
                    run.state = "waiting for its dependencies"
            else:
                self._waiting.back()
                for run in due:
                    self._spawn(run)
                changed = True
        if changed or now >= self._next_status:
            self.write_status()

    def _spawn(self, run: Running) -> None:
        assert self._lock is not None
        run.output.clear()
        try:
            log = RotatingLog(self._logs / f"{run.service.name}.log")
            banner = f"--- {_now()} shrinkwatch {' '.join(run.service.args)} (started by the supervisor)\n"
            log.write(banner.encode())
            run.proc = subprocess.Popen(
                [*self._command, *run.service.args],
                stdout=subprocess.PIPE,
                stderr=subprocess.STDOUT,
                stdin=subprocess.DEVNULL,
                env=self._env,
                # Own session: Ctrl-C at a terminal reaches the supervisor, which stops them in
                # order; and its process group is the service's, to kill whole.
                start_new_session=True,
                pass_fds=(self._lock.fileno(),),
                preexec_fn=_die_with_parent(os.getpid(), run.service.nice),  # noqa: PLW1509 (a prctl, no locks)
            )
        except OSError as exc:  # a full disk, no such program: a death, retried with backoff
            run.output.append(f"could not start: {exc}")
            run.started = time.monotonic()
            run.proc = None
            self._failed_start(run)
            return
        run.pump = threading.Thread(
            target=_pump, args=(run.proc, log, run.output), name=f"log-{run.service.name}", daemon=True
        )
        run.pump.start()
        run.state, run.started_at, run.started = "up", _now(), time.monotonic()
        if run.restarts:
            self._say(f"{run.service.name}: restarted (pid {run.proc.pid}, restart {run.restarts})")
        else:
            self._say(f"{run.service.name}: started (pid {run.proc.pid})")

    def _died(self, run: Running, now: float) -> None:
        assert run.proc is not None
        code = run.proc.returncode
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.killpg(run.proc.pid, signal.SIGKILL)  # whatever it started itself goes with it
        if run.pump is not None:
            run.pump.join(timeout=2)  # the rest of its output
        run.last_exit = f"{exit_reason(code)} at {_now()}"
        run.last_error = _last_error(run.output)
        run.proc = None
        if self.stopping or run.held:
            run.state = "stopped"
            return
        self._schedule_restart(run, now, exit_reason(code))

    def _failed_start(self, run: Running) -> None:
        run.last_exit = f"not started at {_now()}"
        run.last_error = _last_error(run.output)
        self._schedule_restart(run, time.monotonic(), "could not start")

    def _schedule_restart(self, run: Running, now: float, reason: str) -> None:
        if now - run.started >= STEADY_S:
            run.backoff_s = FIRST_BACKOFF_S
        run.restarts += 1
        run.next_start = now + run.backoff_s
        run.state = "waiting to restart"
        why = f": {run.last_error}" if run.last_error else ""
        self._say(f"{run.service.name} died ({reason}){why}; restarting in {run.backoff_s:g} s")
        run.backoff_s = min(run.backoff_s * 2, LONGEST_BACKOFF_S)

    def stop_service(self, name: str) -> None:
        """Stop one service for good (SIGTERM, SIGKILL after STOP_TIMEOUT_S): it is not
        restarted. From the thread that drives the supervisor."""
        run = next(r for r in self._running if r.service.name == name)
        run.held = True
        if run.proc is not None:
            run.proc.terminate()
            try:
                run.proc.wait(timeout=STOP_TIMEOUT_S)
            except subprocess.TimeoutExpired:
                run.proc.kill()
                run.proc.wait()
            self._died(run, time.monotonic())
        run.state = "stopped"
        self._say(f"{name}: stopped")

    def stop(self) -> None:
        """SIGTERM the services in two waves, the cameras (the last started) first, then all
        the others at once; SIGKILL what has not ended within STOP_TIMEOUT_S of its wave."""
        if self._lock is None:  # never started (or already stopped): nothing here is ours
            return
        self.stopping = True
        running = [r for r in reversed(self._running) if r.proc is not None]
        waves = [running[:1], running[1:]] if running and running[0].service.name == "cameras" else [running]
        for wave in waves:
            for run in wave:
                assert run.proc is not None
                if run.proc.poll() is None:
                    run.proc.terminate()
            deadline = time.monotonic() + STOP_TIMEOUT_S
            for run in wave:
                assert run.proc is not None
                try:
                    run.proc.wait(timeout=max(0.1, deadline - time.monotonic()))
                    self._say(f"{run.service.name}: stopped")
                except subprocess.TimeoutExpired:
                    run.proc.kill()
                    run.proc.wait()
                    self._say(f"{run.service.name}: did not stop within {STOP_TIMEOUT_S:g} s; killed")
                self._died(run, time.monotonic())
        for run in self._running:
            if run.proc is None:
                run.state = "stopped"
        self.write_status()
        self._lock.close()
        self._lock = None

    def write_status(self) -> None:
        """The state of every service, for `shrinkwatch status` (written aside, then renamed)."""
        self._next_status = time.monotonic() + STATUS_EVERY_S
        state = {
            "schema": "shrinkwatch.supervisor-status/1",
            "role": self._role,
            "pid": os.getpid(),
            "started_at": self._started_at,
            "updated_at": _now(),
            "stopping": self.stopping,
            "services": [run.as_dict() for run in self._running],
        }
        try:
            self._status_path.parent.mkdir(parents=True, exist_ok=True)
            staging = self._status_path.with_suffix(".tmp")
            staging.write_text(json.dumps(state, indent=1))
            staging.replace(self._status_path)
        except OSError as exc:  # a full disk must not stop the services; say it once
            if not self._status_failed:
                self._say(f"could not write {self._status_path}: {exc}")
            self._status_failed = True
        else:
            self._status_failed = False


def _pump(proc: subprocess.Popen[bytes], log: RotatingLog, recent: collections.deque[str]) -> None:
    """Copy a child's output, line by line, to its log (and the last lines to `recent`)."""
    assert proc.stdout is not None
    writable = True
    try:
        for line in proc.stdout:  # read to the end whatever happens, or the child would block
            recent.append(line.decode(errors="replace").rstrip("\n"))
            if writable:
                try:
                    log.write(line)
                except OSError:  # a full disk: keep the service running, without its log
                    writable = False
    finally:
        with contextlib.suppress(OSError):
            log.close()


def read_status(home: Path) -> dict[str, Any] | None:
    """The last state a supervisor of this home wrote, or None if none ever ran here."""
    try:
        state: dict[str, Any] = json.loads((home / "run" / "status.json").read_text())
    except (OSError, ValueError):
        return None
    return state
