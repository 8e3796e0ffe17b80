"""The one thread that runs TensorFlow: a Qt-free, single-thread job queue.

TensorFlow (and tf-keras-vis, pybind11 underneath) is not safe to drive from several threads at
once, nor from threads Python did not create: two threads tracing the same ``tf.function`` at
once, or a pybind11 error path on a Qt thread-pool thread (``take_gil`` on a foreign thread
state), end the process with a segmentation fault.  So every TensorFlow call of the viewer
(model load, warm-up tracing, predict, every heat-map method) runs here, in submission order,
one at a time, on one Python ``threading.Thread``:

* :func:`acquire_executor` / :func:`release_executor` give the process's executor (TensorFlow is
  a process resource, so there is exactly one; started by its first user, stopped by its last).
* :meth:`TFExecutor.submit` queues ``fn(*args)`` and returns a ``concurrent.futures.Future``;
  jobs carry an ``owner`` so one user (a window's analysis controller) can drop its queued jobs
  and wait for its running one without touching the others' (:meth:`TFExecutor.discard`,
  :meth:`TFExecutor.wait_idle`).
* :func:`check_tf_thread` is called by the inference entry points
  (:class:`~cxr_viewer.inference.bundle.ModelBundle` load / warm-up / predict / cams): once an
  executor runs, a TensorFlow call from any other thread raises :class:`WrongThread` instead of
  risking a crash.  Command-line use without an executor is unaffected.

No Qt here (core rule); the UI turns results into queued Qt signals.
"""

from __future__ import annotations

import atexit
import contextlib
import itertools
import queue
import threading
from collections.abc import Callable
from concurrent.futures import Future
from dataclasses import dataclass, field
from typing import Any

THREAD_NAME = "cxr-tensorflow"


class WrongThread(RuntimeError):
    """A TensorFlow entry point was called off the dedicated TensorFlow thread."""


@dataclass(order=True)
class _Job:
    seq: int
    fn: Callable[..., Any] = field(compare=False)
    args: tuple = field(compare=False)
    owner: Any = field(compare=False)
    future: Future = field(compare=False)


_STOP = object()


class TFExecutor:
    """One dedicated daemon thread running submitted jobs in order (see the module docstring)."""

    def __init__(self, name: str = THREAD_NAME) -> None:
        self._queue: queue.Queue[Any] = queue.Queue()
        self._lock = threading.Lock()
        self._pending: list[_Job] = []  # queued, not started (for discard)
        self._running: _Job | None = None
        self._idle = threading.Condition(self._lock)
        self._seq = itertools.count()
        self._stopped = False
        self._thread = threading.Thread(target=self._loop, name=name, daemon=True)
        self._thread.start()
        self.thread_id: int = self._thread.ident or 0

    # ---- submission ------------------------------------------------------------------------
    def submit(self, fn: Callable[..., Any], *args: Any, owner: Any = None) -> Future:
        """Queue ``fn(*args)`` behind everything submitted before; returns its Future."""
        future: Future = Future()
        with self._lock:
            if self._stopped:
                raise RuntimeError("the TensorFlow executor is shut down")
            job = _Job(next(self._seq), fn, args, owner, future)
            self._pending.append(job)
        self._queue.put(job)
        return future

    def on_thread(self) -> bool:
        """True when called on the executor's thread."""
        return threading.get_ident() == self.thread_id

    def discard(self, owner: Any) -> int:
        """Cancel ``owner``'s queued (not yet started) jobs; returns how many."""
        with self._lock:
            mine = [j for j in self._pending if j.owner is owner]
            self._pending = [j for j in self._pending if j.owner is not owner]
        for job in mine:
            job.future.cancel()
        return len(mine)

    def busy(self, owner: Any = None) -> bool:
        """Whether ``owner`` (any owner when None) has a job queued or running."""
        with self._lock:
            jobs = [*self._pending, *([self._running] if self._running else [])]
            return any(owner is None or j.owner is owner for j in jobs)

    def wait_idle(self, owner: Any = None, timeout: float | None = None) -> bool:
        """Wait until ``owner`` has nothing queued or running; False on timeout."""
        if self.on_thread():
            return not self.busy(owner)

        def idle() -> bool:
            jobs = [*self._pending, *([self._running] if self._running else [])]
            return not any(owner is None or j.owner is owner for j in jobs)

        with self._idle:
            return self._idle.wait_for(idle, timeout)

    # ---- the thread ------------------------------------------------------------------------
    def _loop(self) -> None:
        while True:
            job = self._queue.get()
            if job is _STOP:
                return
            with self._lock:
                if job not in self._pending:  # discarded
                    continue
                self._pending.remove(job)
                self._running = job
            try:
                if job.future.set_running_or_notify_cancel():
                    try:
                        value = job.fn(*job.args)
                    except BaseException as exc:  # noqa: BLE001 - the submitter sees it
                        job.future.set_exception(exc)
                    else:
                        job.future.set_result(value)
            finally:
                with self._idle:
                    self._running = None
                    self._idle.notify_all()

    def shutdown(self, timeout: float | None = 30.0) -> None:
        """Drop queued jobs, let the running one finish (TensorFlow cannot be interrupted),
        stop the thread."""
        with self._lock:
            self._stopped = True
            dropped, self._pending = self._pending, []
        for job in dropped:
            job.future.cancel()
        self._queue.put(_STOP)
        if not self.on_thread():
            self._thread.join(timeout)

    @property
    def alive(self) -> bool:
        return self._thread.is_alive()


_executor: TFExecutor | None = None
_users = 0
_executor_lock = threading.Lock()


def acquire_executor() -> TFExecutor:
    """The process's TensorFlow executor, started on first use; pair with
    :func:`release_executor` (the last user's release stops it and frees TensorFlow for
    command-line use on the calling thread again)."""
    global _executor, _users
    with _executor_lock:
        if _executor is None or not _executor.alive:
            _executor = TFExecutor()
        _users += 1
        return _executor


def release_executor(timeout: float | None = 30.0) -> None:
    """One user is done; the last one stops the thread (after its running job)."""
    global _executor, _users
    with _executor_lock:
        _users = max(0, _users - 1)
        if _users or _executor is None:
            return
        ex, _executor = _executor, None
    ex.shutdown(timeout)


def current_executor() -> TFExecutor | None:
    """The running executor, or None when none was started (command-line use)."""
    ex = _executor
    return ex if ex is not None and ex.alive else None


def check_tf_thread(what: str) -> None:
    """Raise :class:`WrongThread` when an executor runs and this is not its thread.

    Called at the top of every TensorFlow entry point of the viewer.
    """
    ex = current_executor()
    if ex is not None and not ex.on_thread():
        name = threading.current_thread().name
        raise WrongThread(
            f"{what} called on thread {name!r}; TensorFlow runs only on the {THREAD_NAME!r} "
            "thread (submit it to cxr_viewer.inference.tfthread.acquire_executor())"
        )


@atexit.register
def _stop_at_exit() -> None:
    ex = _executor
    if ex is not None:
        with contextlib.suppress(Exception):
            ex.shutdown(timeout=30.0)
