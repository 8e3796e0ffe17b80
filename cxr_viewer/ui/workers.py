"""Background work for the viewer: a QThreadPool runner whose results carry a generation id per
channel, so a result that arrives after a newer request on the same channel is dropped (ndv's
stale-result rule). Signals live on a QObject created in the GUI thread (superqt's pattern), so
results and errors are delivered on the GUI thread; every task has an error path.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable
from typing import Any

from PySide6.QtCore import QObject, QRunnable, QThreadPool, Signal

log = logging.getLogger(__name__)


class TaskContext:
    """Handed to a task function that asked for it: progress reporting and cancellation."""

    def __init__(self, signals: _TaskSignals) -> None:
        self._signals = signals
        self._cancelled = threading.Event()

    @property
    def cancelled(self) -> bool:
        return self._cancelled.is_set()

    def cancel(self) -> None:
        self._cancelled.set()

    def progress(self, value: Any) -> None:
        if not self.cancelled:
            self._signals.progress.emit(value)


class _TaskSignals(QObject):
    result = Signal(object)
    error = Signal(object)
    progress = Signal(object)
    done = Signal()


class _Task(QRunnable):
    def __init__(self, fn: Callable[..., Any], args: tuple, signals: _TaskSignals,
                 context: TaskContext | None) -> None:
        super().__init__()
        self.setAutoDelete(True)
        self._fn = fn
        self._args = args
        self._signals = signals
        self._context = context

    def run(self) -> None:  # worker thread
        try:
            if self._context is not None:
                value = self._fn(*self._args, context=self._context)
            else:
                value = self._fn(*self._args)
        except BaseException as exc:  # noqa: BLE001 - every failure goes back to the GUI thread
            self._signals.error.emit(exc)
        else:
            self._signals.result.emit(value)
        finally:
            self._signals.done.emit()


class TaskRunner(QObject):
    """Run callables off the GUI thread; per-channel generation ids drop stale results.

    ``submit("open", load_image, path, on_result=..., on_error=...)`` cancels (marks stale) the
    previous "open" request; only the newest request's callbacks run.
    """

    def __init__(self, parent: QObject | None = None, max_threads: int = 2) -> None:
        super().__init__(parent)
        self.pool = QThreadPool(self)
        self.pool.setMaxThreadCount(max_threads)
        self._generation: dict[str, int] = {}
        self._contexts: dict[str, TaskContext] = {}
        self._live: set[_TaskSignals] = set()

    def generation(self, channel: str) -> int:
        return self._generation.get(channel, 0)

    def cancel(self, channel: str) -> None:
        self._generation[channel] = self.generation(channel) + 1
        ctx = self._contexts.pop(channel, None)
        if ctx is not None:
            ctx.cancel()

    def submit(
        self,
        channel: str,
        fn: Callable[..., Any],
        *args: Any,
        on_result: Callable[[Any], None] | None = None,
        on_error: Callable[[BaseException], None] | None = None,
        on_progress: Callable[[Any], None] | None = None,
        with_context: bool = False,
    ) -> int:
        self.cancel(channel)
        gen = self.generation(channel)
        signals = _TaskSignals()  # created here: lives in the GUI thread
        context = TaskContext(signals) if (with_context or on_progress is not None) else None
        if context is not None:
            self._contexts[channel] = context

        def current() -> bool:
            return self._generation.get(channel, 0) == gen

        def deliver(value: Any) -> None:
            if current() and on_result is not None:
                on_result(value)

        def fail(exc: BaseException) -> None:
            if not current():
                return
            if on_error is not None:
                on_error(exc)
            else:
                log.error("background task %s failed", channel, exc_info=exc)

        def progress(value: Any) -> None:
            if current() and on_progress is not None:
                on_progress(value)

        def finished() -> None:
            self._live.discard(signals)
            if self._contexts.get(channel) is context and current():
                self._contexts.pop(channel, None)

        signals.result.connect(deliver)
        signals.error.connect(fail)
        signals.progress.connect(progress)
        signals.done.connect(finished)
        self._live.add(signals)
        self.pool.start(_Task(fn, args, signals, context))
        return gen

    def busy(self) -> bool:
        return bool(self._live)

    def shutdown(self, timeout_ms: int = 10000) -> None:
        for channel in list(self._generation):
            self.cancel(channel)
        self.pool.clear()
        self.pool.waitForDone(timeout_ms)
