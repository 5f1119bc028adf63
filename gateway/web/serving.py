"""Serving in several processes: the worker's app factory, its deadlines, the supervisor.

`contactpoint serve --workers N` (N > 1) binds one socket and starts N uvicorn worker
processes that accept from it. Workers are *spawned*, not forked, so nothing built in the
parent reaches them: each loads the settings itself, from the file the parent names in
`$CONTACTPOINT_CONFIG` (and the same environment), in `app_from_environment`, which also
sets `WorkerDeadlineProtocol`'s read deadlines before the first connection is accepted.

On SIGTERM (or SIGINT) the supervisor sends SIGTERM to every worker; each stops accepting,
lets the requests in flight finish (up to `graceful_seconds`, then cancels them), and runs
the app's shutdown, which commits the audit events still waiting and signs a final
checkpoint. The supervisor exits once every worker has.
"""

from __future__ import annotations

import logging
import os
import sys
import tempfile
from typing import TYPE_CHECKING, Final

from uvicorn.config import STARTUP_FAILURE
from uvicorn.supervisors.multiprocess import Multiprocess

from gateway.web.deadlines import DeadlineProtocol
from gateway.web.gctuning import freeze_startup

if TYPE_CHECKING:
    import socket
    from pathlib import Path

    from starlette.applications import Starlette
    from uvicorn.config import Config

    from gateway.settings import Settings

__all__ = ["WorkerDeadlineProtocol", "app_from_environment", "serve_workers", "workers_problem"]

log = logging.getLogger("gateway.serving")

APP: Final = "gateway.web.serving:app_from_environment"
PROTOCOL: Final = "gateway.web.serving:WorkerDeadlineProtocol"


class WorkerDeadlineProtocol(DeadlineProtocol):
    """`DeadlineProtocol` named by import string, so a spawned worker can load it.

    A class made by `deadline_protocol()` exists only in the process that made it; this
    one is importable everywhere, and `app_from_environment` sets its two clocks from the
    worker's settings (uvicorn loads the protocol, then calls the factory, then accepts).
    """


def workers_problem(settings: Settings, workers: int) -> str | None:
    """Why `workers` processes would allow more than the configured budgets (None: fine).

    Counting without Redis (none configured, or Redis down with `when_redis_down =
    "share"`), each process enforces `1 / [budgets] processes` of every budget, so more
    processes than that number allow more than the budget, silently. Accepted when
    `per_process_accepted` says so, or when Redis is down means refusing anyway.
    """
    budgets = settings.budgets
    redis = settings.cache.redis_url is not None
    if workers <= budgets.processes or budgets.per_process_accepted or (
            redis and budgets.when_redis_down == "refuse"):
        return None
    when = "while Redis is down" if redis else "without Redis"
    share = "all" if budgets.processes == 1 else f"1/{budgets.processes}"
    return (f"--workers {workers} exceeds [budgets] processes = {budgets.processes}: {when} "
            f"each process enforces {share} of every budget, so together they would allow "
            f"{workers / budgets.processes:g} times it; set processes >= {workers} "
            "(counting the gateway processes on every host)")


def app_from_environment() -> Starlette:
    """The gateway app for one worker process, from `$CONTACTPOINT_CONFIG` and the environment.

    Called by uvicorn in each worker (`factory=True`). The parent has already checked the
    same configuration; should it have changed since and now be unfit, the worker exits
    with uvicorn's start-up failure status, which stops the parent instead of restarting.
    """
    from gateway.logs import configure_logging
    from gateway.settings import ConfigError, check_production, load_settings
    from gateway.web.app import create_app

    try:
        settings = check_production(load_settings())
    except ConfigError as exc:
        sys.stderr.write(f"contactpoint serve (worker {os.getpid()}): {exc}\n")
        sys.exit(STARTUP_FAILURE)
    configure_logging(fmt=settings.telemetry.log_format)
    WorkerDeadlineProtocol.header_seconds = settings.limits.header_read_seconds
    WorkerDeadlineProtocol.body_seconds = settings.limits.body_read_seconds
    app = create_app(settings)
    freeze_startup()
    log.info("worker %d starting (read deadlines: head %gs, body %gs)", os.getpid(),
             WorkerDeadlineProtocol.header_seconds, WorkerDeadlineProtocol.body_seconds)
    return app


class _Supervisor(Multiprocess):
    """uvicorn's supervisor, telling prometheus_client when a worker has gone for good.

    prometheus_client keeps each process's metrics in files under
    `PROMETHEUS_MULTIPROC_DIR`; `mark_process_dead` drops a dead process's live gauges.
    uvicorn replaces a worker that died or hung (and all of them on SIGHUP): every pid
    that leaves the pool is marked, and the whole directory goes at exit.
    """

    def __init__(self, config: Config, sockets: list[socket.socket], metrics_dir: str) -> None:
        super().__init__(config, sockets)
        self.metrics_dir = metrics_dir
        self._known: set[int] = set()

    def keep_subprocess_alive(self) -> None:
        super().keep_subprocess_alive()  # runs after each round of signal handling
        self._mark_departed()

    def join_all(self) -> None:
        super().join_all()
        self._mark_departed(everyone=True)

    @property
    def failed_to_start(self) -> bool:
        return any(p.exitcode == STARTUP_FAILURE for p in self.processes)

    def _mark_departed(self, *, everyone: bool = False) -> None:
        from prometheus_client import multiprocess

        current = set() if everyone else {p.pid for p in self.processes if p.pid is not None}
        for pid in self._known - current:
            # prometheus_client's multiprocess module has no annotations.
            multiprocess.mark_process_dead(pid, self.metrics_dir)  # type: ignore[no-untyped-call]
        self._known = current


def _export(name: str, value: str) -> None:
    # Writes, never reads: spawned workers inherit the environment, and it is how they
    # learn the configuration file (read back by `gateway.settings`) and the metrics folder.
    os.environ[name] = value  # noqa: TID251


def serve_workers(config: Path | None, *, workers: int, host: str, port: int,
                  graceful_seconds: int) -> int:
    """Serve with `workers` processes on one socket until SIGTERM/SIGINT; the exit status.

    `config` (if given) is exported as `$CONTACTPOINT_CONFIG` for the workers. A fresh
    folder is made for prometheus_client's per-process files (`PROMETHEUS_MULTIPROC_DIR`)
    and removed at exit.
    """
    import uvicorn

    if config is not None:
        _export("CONTACTPOINT_CONFIG", str(config.resolve()))
    with tempfile.TemporaryDirectory(prefix="contactpoint-metrics-") as metrics_dir:
        _export("PROMETHEUS_MULTIPROC_DIR", metrics_dir)
        server = uvicorn.Config(
            APP, factory=True, host=host, port=port, workers=workers, http=PROTOCOL,
            access_log=False, log_level="warning", server_header=False,
            timeout_graceful_shutdown=graceful_seconds)
        supervisor = _Supervisor(server, [server.bind_socket()], metrics_dir)
        supervisor.run()
    return STARTUP_FAILURE if supervisor.failed_to_start else 0
