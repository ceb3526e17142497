"""Live progress of a training run, and the heartbeat that tells the watchdog it is alive.

Progress is written at most every `every_s` seconds (and always at the last step): a
step takes a fraction of a second on small models, and a database write per step would
cost more than the step. The heartbeat runs in a thread of its own, so the run stays
visibly alive while it evaluates or uploads, when no steps are reported; a worker that
dies stops both, and the watchdog fails the run.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable
from types import TracebackType
from typing import Protocol

log = logging.getLogger(__name__)


class RunAbandoned(RuntimeError):
    """The run is no longer running (the watchdog failed it): stop without touching it."""


class ProgressWriter(Protocol):
    def __call__(
        self, *, step: int, total_steps: int, loss: float, eta_s: float, epoch: float
    ) -> bool: ...


class ProgressReporter:
    """The on_progress callback of models.training.train.train_detector, throttled."""

    def __init__(
        self,
        *,
        write: ProgressWriter,
        every_s: float,
        pool_size: int,
        batch_size: int,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.write, self.every_s, self.clock = write, every_s, clock
        # Images per step over images per pass, as train_detector counts its epochs.
        self.epoch_per_step = min(batch_size, pool_size) / max(1, pool_size)
        self.last_write: float | None = None

    def __call__(self, step: int, total_steps: int, loss: float, eta_s: float) -> None:
        now = self.clock()
        due = self.last_write is None or now - self.last_write >= self.every_s
        if not due and step < total_steps:
            return
        self.last_write = now
        alive = self.write(
            step=step,
            total_steps=total_steps,
            loss=loss,
            eta_s=eta_s,
            epoch=step * self.epoch_per_step,
        )
        if not alive:
            # train_detector stops on an exception from its callback and saves nothing.
            raise RunAbandoned(f"the run stopped being ours at step {step}")


class Heartbeat:
    """Calls beat() every every_s seconds in a daemon thread while the block runs."""

    def __init__(self, beat: Callable[[], None], every_s: float) -> None:
        self.beat, self.every_s = beat, every_s
        self.stop = threading.Event()
        self.thread = threading.Thread(target=self._loop, name="training-heartbeat", daemon=True)

    def __enter__(self) -> Heartbeat:
        self.thread.start()
        return self

    def __exit__(
        self,
        kind: type[BaseException] | None,
        error: BaseException | None,
        trace: TracebackType | None,
    ) -> None:
        self.stop.set()
        self.thread.join()

    def _loop(self) -> None:
        while not self.stop.wait(self.every_s):
            try:
                self.beat()
            except Exception:  # a database hiccup must not kill the run; the next beat retries
                log.warning("training heartbeat failed", exc_info=True)
