"""`loupe run`'s child processes, and the loop that starts a crashed one again.

app.policy.restarts decides (restart after how long, or give up); this module only does
it: it polls the children, reaps what a dead one left behind, starts it again, logs each
step and keeps var/supervisor.json up to date for /healthz.

Why a file: the supervisor and the web app are separate processes, and /healthz must stay
fast and work where no supervisor runs (docker-compose, Kubernetes). A small JSON file,
replaced atomically on every change, is read in microseconds, needs no server of its own,
and its absence simply means "no supervisor here". It names the supervisor's pid, so a
file left behind by a supervisor that was itself killed is recognised and ignored.
"""

from __future__ import annotations

import contextlib
import json
import logging
import os
import signal
import subprocess
import tempfile
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any, TextIO

import psutil

from app.policy import restarts
from app.policy.restarts import ChildRecord, GiveUp, RestartPolicy

log = logging.getLogger("loupe.supervisor")
STATUS_FILE = "supervisor.json"
POLL_S = 0.2


class Children:
    """Child processes whose output lines are prefixed with their names."""

    def __init__(self, output: TextIO):
        self.output = output
        self.procs: dict[str, subprocess.Popen[bytes]] = {}
        self.commands: dict[str, tuple[list[str], dict[str, str], Path]] = {}
        self._write_lock = threading.Lock()
        self._pumps: list[threading.Thread] = []

    def spawn(self, name: str, argv: list[str], *, env: dict[str, str], cwd: Path) -> None:
        # A session of its own: Ctrl-C reaches only the supervisor, which stops children in
        # order, and a process group to clean up whatever the child started (Ray's helpers).
        proc = subprocess.Popen(
            argv,
            env=env,
            cwd=cwd,
            stdin=subprocess.DEVNULL,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
        self.procs[name] = proc  # a restarted child keeps its place in the stop order
        self.commands[name] = (argv, env, cwd)
        pump = threading.Thread(target=self._pump, args=(name, proc), daemon=True)
        pump.start()
        self._pumps = [p for p in self._pumps if p.is_alive()] + [pump]

    def respawn(self, name: str) -> None:
        """Start a child again with the command it was first started with."""
        argv, env, cwd = self.commands[name]
        self.spawn(name, argv, env=env, cwd=cwd)

    def _pump(self, name: str, proc: subprocess.Popen[bytes]) -> None:
        assert proc.stdout is not None
        prefix = f"{name:<6} | "
        for raw in iter(proc.stdout.readline, b""):
            line = raw.decode("utf-8", errors="replace").rstrip("\n")
            with self._write_lock:
                try:
                    self.output.write(prefix + line + "\n")
                    self.output.flush()
                except (OSError, ValueError):  # the output was closed after a stop
                    return

    def exit_code(self, name: str) -> int | None:
        """The child's exit code, or None while it runs."""
        return self.procs[name].poll()

    def first_exited(self) -> tuple[str, int] | None:
        """The first child found to have exited, with its exit code."""
        for name, proc in self.procs.items():
            if proc.poll() is not None:
                return name, proc.returncode
        return None

    def stop(self, grace_s: float) -> None:
        """Stop the children newest first, each before the next, so that the worker finishes
        its tasks while Serve still answers. SIGKILL after the grace period."""
        for proc in reversed(self.procs.values()):
            if proc.poll() is None:
                proc.terminate()
                with contextlib.suppress(subprocess.TimeoutExpired):
                    proc.wait(timeout=grace_s)
            if proc.poll() is None:
                with contextlib.suppress(ProcessLookupError):
                    os.killpg(proc.pid, signal.SIGKILL)
                proc.wait()
            reap_session(proc.pid)
        for thread in self._pumps:
            thread.join(timeout=2.0)
        self.procs.clear()
        self._pumps.clear()


def reap_session(sid: int, grace_s: float = 3.0) -> None:
    """Stop whatever a child left behind (Celery's beat, Ray's helpers and actors): every
    process in its session. A child leads a session of its own (Children.spawn); its process
    group is not enough, because each Ray actor takes a group of its own, and the replicas of
    a killed Serve app went on answering, and holding their ports, for up to a minute."""
    for sig in (signal.SIGTERM, signal.SIGKILL):
        left = _session_members(sid)
        if not left:
            return
        for pid in left:
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, sig)
        deadline = time.monotonic() + grace_s
        while _session_members(sid) and time.monotonic() < deadline:
            time.sleep(0.1)


def _session_members(sid: int) -> list[int]:
    """The live processes of session `sid`; a zombie has exited already (a container's bare
    init may never reap it)."""
    members = []
    for proc in psutil.process_iter(["status"]):
        try:
            if proc.info["status"] != psutil.STATUS_ZOMBIE and os.getsid(proc.pid) == sid:
                members.append(proc.pid)
        except (OSError, psutil.Error):  # gone meanwhile, or not ours to look at
            continue
    return members


def _forget_metrics(env: dict[str, str], pid: int) -> None:
    """A child that shared the multiprocess metrics directory exited: its live gauges go, its
    counters stay (app.telemetry.exposition)."""
    if path := env.get("PROMETHEUS_MULTIPROC_DIR"):
        from prometheus_client import multiprocess

        multiprocess.mark_process_dead(pid, path)  # type: ignore[no-untyped-call]


# --- the status file ------------------------------------------------------------------------


def write_status(path: Path, children: dict[str, Any]) -> None:
    """Replace the status file atomically: a reader sees the old file or the new, never half."""
    body = {"pid": os.getpid(), "children": children}
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=".supervisor-", suffix=".json")
    try:
        with os.fdopen(fd, "w") as f:
            json.dump(body, f)
        os.replace(tmp, path)
    except BaseException:
        with contextlib.suppress(OSError):
            os.unlink(tmp)
        raise


def read_status(path: Path) -> dict[str, Any] | None:
    """The children as the running supervisor last wrote them; None if there is no
    supervisor (no file, an unreadable one, or one whose writer is gone)."""
    try:
        body = json.loads(path.read_text())
        pid, children = int(body["pid"]), body["children"]
    except (OSError, ValueError, KeyError, TypeError):
        return None
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return None
    except PermissionError:  # alive, but another user's
        pass
    return children if isinstance(children, dict) else None


# --- the restart loop -----------------------------------------------------------------------


class Supervisor:
    """Keeps the children running: one that exits is started again after the policy's delay,
    and `run` returns when one keeps crashing (the caller then stops everything)."""

    def __init__(
        self,
        children: Children,
        status_path: Path,
        policy: RestartPolicy | None = None,
        clock: Callable[[], float] = time.monotonic,
    ):
        self.children = children
        self.status_path = status_path
        self.policy = policy or RestartPolicy()
        self.clock = clock
        self.records: dict[str, ChildRecord] = {}

    def start(self, name: str, argv: list[str], *, env: dict[str, str], cwd: Path) -> None:
        self.children.spawn(name, argv, env=env, cwd=cwd)
        self.records[name] = ChildRecord(started_at=self.clock())
        self.publish()

    def run(self, stop: threading.Event | None = None) -> tuple[str, ChildRecord] | None:
        """Supervise until a child keeps crashing (returns it) or `stop` is set (None)."""
        stop = stop or threading.Event()
        while not stop.is_set():
            if (given_up := self.step()) is not None:
                return given_up
            stop.wait(POLL_S)
        return None

    def step(self) -> tuple[str, ChildRecord] | None:
        """One look at every child: note exits, start those whose delay is over."""
        changed = False
        for name, record in list(self.records.items()):
            now = self.clock()
            if record.state == "running" and (code := self.children.exit_code(name)) is not None:
                record = self._exited(name, record, code, now)
                changed = True
                if record.gave_up:
                    self.publish()
                    return name, record
            elif restarts.due(record, now):
                self.children.respawn(name)
                record = self.records[name] = restarts.restarted(record, now=self.clock())
                log.warning("%s started again (restart %d)", name, record.restarts)
                changed = True
        if changed:
            self.publish()
        return None

    def _exited(self, name: str, record: ChildRecord, code: int, now: float) -> ChildRecord:
        # Whatever the child started (beat, Ray's helpers) goes with it, so that its next
        # start finds no second beat and no port still taken.
        pid = self.children.procs[name].pid
        reap_session(pid)
        _forget_metrics(self.children.commands[name][1], pid)
        record, decision = restarts.exited(record, code=code, now=now, policy=self.policy)
        self.records[name] = record
        level = logging.ERROR if isinstance(decision, GiveUp) else logging.WARNING
        log.log(level, "%s", restarts.describe_exit(name, record, decision))
        return record

    def publish(self) -> None:
        now, wall = self.clock(), time.time()
        children = {
            name: restarts.status(record, now=now, wall_now=wall)
            for name, record in self.records.items()
        }
        try:
            write_status(self.status_path, children)
        except OSError as exc:  # a full disk must not stop the supervision itself
            log.warning("could not write %s: %s", self.status_path, exc)

    def forget_status(self) -> None:
        with contextlib.suppress(FileNotFoundError):
            self.status_path.unlink()
