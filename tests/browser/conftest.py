"""Browser fixtures: the demo stack on real sockets, a second loopback origin, headless Chromium.

The stack (the four simulated systems, the development issuer's JWKS, the
gateway with the demo's settings: development mode, loopback CORS, the
dashboard's trusted documents) runs in a thread of its own, because Selenium's
calls block: the browser must be answered while a test waits on it.

Chromium and chromedriver are Debian's (`.ci/run` installs them). Without them
these tests skip locally, but fail under CI=true: they never silently skip in CI.
Screenshots go to `$CONTACTPOINT_ARTIFACTS` (default `test-artifacts/`).
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import socket
import tempfile
import threading
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
import uvicorn
from aiohttp import web

from connectors.simulators import Population, RunningSimulators, run_simulators
from gateway.auth.devissuer import JWKS_PATH, create_jwks_app
from gateway.web.app import create_app
from gateway.web.demo import demo_settings
from gateway.web.runtime import london_today

ROOT = Path(__file__).parents[2]
CHROMIUM = Path("/usr/bin/chromium")
CHROMEDRIVER = Path("/usr/bin/chromedriver")
PAGES = Path(__file__).parent / "pages"
START_SECONDS = 30


def artifacts() -> Path:
    folder = Path(os.environ.get("CONTACTPOINT_ARTIFACTS") or ROOT / "test-artifacts")
    folder.mkdir(parents=True, exist_ok=True)
    return folder


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _require(paths: list[Path], what: str) -> None:
    missing = [str(p) for p in paths if not p.exists()]
    if not missing:
        return
    reason = f"{what} not installed ({', '.join(missing)} missing): .ci/run installs it"
    if os.environ.get("CI") == "true":
        pytest.fail(reason)
    pytest.skip(reason)


@dataclass
class DemoStack:
    """The demo's parts, served from a background thread's event loop until `close`."""

    population: Population
    folder: Path
    gateway: str = ""
    other_origin: str = ""
    sims: RunningSimulators | None = None
    _loop: asyncio.AbstractEventLoop | None = None
    _ready: threading.Event = field(default_factory=threading.Event)
    _stop: asyncio.Event | None = None
    _failure: BaseException | None = None

    def start(self) -> None:
        thread = threading.Thread(target=self._run, name="demo-stack", daemon=True)
        thread.start()
        if not self._ready.wait(START_SECONDS):
            raise RuntimeError("the demo stack did not start in time")
        if self._failure is not None:
            raise RuntimeError("the demo stack failed to start") from self._failure
        self._thread = thread

    def close(self) -> None:
        if self._loop is not None and self._stop is not None:
            self._loop.call_soon_threadsafe(self._stop.set)
            self._thread.join(START_SECONDS)

    def set_down(self, system: str, down: bool) -> None:
        """Make a simulated system drop every connection (or answer again)."""
        assert self.sims is not None
        assert self._loop is not None

        def change() -> None:
            getattr(self.sims, system).knobs.down = down

        done = threading.Event()
        self._loop.call_soon_threadsafe(lambda: (change(), done.set()))
        assert done.wait(5)

    def _run(self) -> None:
        try:
            asyncio.run(self._main())
        except BaseException as exc:  # noqa: BLE001 -- reported to the starting thread
            self._failure = exc
            self._ready.set()

    async def _main(self) -> None:
        self._loop, self._stop = asyncio.get_running_loop(), asyncio.Event()
        async with (run_simulators(self.population, shutdown_timeout=0.2) as sims,
                    _serve(create_jwks_app()) as jwks_base,
                    _serve(_cross_origin_app()) as other):
            self.sims, self.other_origin = sims, other
            settings = demo_settings(sims.urls(), jwks_base + JWKS_PATH, None)
            settings = settings.model_copy(update={
                "audit": settings.audit.model_copy(
                    update={"sqlite_path": str(self.folder / "audit.db")}),
                "alerts": settings.alerts.model_copy(
                    update={"path": str(self.folder / "alerts.jsonl")}),
            })
            port = _free_port()
            server = uvicorn.Server(uvicorn.Config(
                create_app(settings), host="127.0.0.1", port=port, log_level="warning",
                access_log=False, lifespan="on"))
            serving = asyncio.create_task(server.serve())
            while not server.started and not serving.done():
                await asyncio.sleep(0.02)
            if not server.started:
                await serving
                raise RuntimeError("the gateway did not start")
            self.gateway = f"http://127.0.0.1:{port}"
            self._ready.set()
            await self._stop.wait()
            server.should_exit = True
            await serving


@contextlib.asynccontextmanager
async def _serve(app: web.Application) -> Any:
    runner = web.AppRunner(app, access_log=None, handle_signals=False, shutdown_timeout=0.2)
    await runner.setup()
    try:
        await web.TCPSite(runner, "127.0.0.1", 0).start()
        yield f"http://127.0.0.1:{runner.addresses[0][1]}"
    finally:
        await runner.cleanup()


def _cross_origin_app() -> web.Application:
    """Another loopback origin: a page that calls the gateway with an Authorization header."""

    async def page(_: web.Request) -> web.FileResponse:
        return web.FileResponse(PAGES / "cross_origin.html")

    app = web.Application()
    app.router.add_get("/cross-origin.html", page)
    return app


@pytest.fixture(scope="session")
def stack():
    population = Population.generate(seed=11, size=400, today=london_today())
    with tempfile.TemporaryDirectory(prefix="cpg-browser-") as folder:
        running = DemoStack(population, Path(folder))
        running.start()
        try:
            yield running
        finally:
            running.close()


@pytest.fixture(scope="session")
def browser():
    _require([CHROMIUM, CHROMEDRIVER], "Chromium (Debian's chromium and chromium-driver)")
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service

    options = webdriver.ChromeOptions()
    options.binary_location = str(CHROMIUM)
    for argument in ("--headless=new", "--window-size=1280,1500", "--disable-gpu",
                     "--disable-dev-shm-usage", "--no-first-run", "--disable-extensions"):
        options.add_argument(argument)
    if os.geteuid() == 0:
        options.add_argument("--no-sandbox")  # Chromium's sandbox refuses to run as root
    # Chromium's own temporary files (its shared memory, with --disable-dev-shm-usage) go to
    # a folder removed after the session, not left in the system's /tmp.
    with tempfile.TemporaryDirectory(prefix="cpg-chromium-") as scratch:
        service = Service(executable_path=str(CHROMEDRIVER),
                          env={**os.environ, "TMPDIR": scratch})
        driver = webdriver.Chrome(service=service, options=options)
        driver.set_page_load_timeout(20)
        try:
            yield driver
        finally:
            driver.quit()


@pytest.fixture
def screenshot(browser, request):
    """`screenshot("name")` writes `<artifacts>/<name>.png`; one more is taken on failure."""
    taken: list[Path] = []

    def take(name: str) -> Path:
        path = artifacts() / f"{name}.png"
        browser.save_screenshot(str(path))
        taken.append(path)
        return path

    yield take
    report = getattr(request.node, "rep_call", None)
    if report is not None and report.failed:
        take(f"FAILED-{request.node.name}")


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_makereport(item, call):
    outcome = yield
    report = outcome.get_result()
    if report.when == "call":
        item.rep_call = report
