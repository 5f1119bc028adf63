"""Registered systems: validated, health-checked, swapped in, kept on disk, seen by every worker.

`Registrations` is the one path by which the systems in service change while
the gateway serves. A registration is checked in this order and refused, in
one line, at the first failure (`RegistrationError`, with an HTTP status):

    manifest valid (400) -> may the caller touch it (403, `may_change`)
    -> connector built and healthy (422) -> audit event durable (503)
    -> `<name>.toml` written (500) -> swapped in

so a system takes traffic only once it has answered its health check and
the change is in the audit log. The registry directory (`[registry] dir`) is
read at start-up after `[[connectors]]` (a file overrides the configured
system of its name) and polled by every worker (`watch`), so a registration
made through one worker reaches the others, and survives a restart.
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import logging
import os
import re
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from connectors.errors import ConnectorError
from connectors.manifest import ManifestError
from connectors.registry import build_connector, close_all, manifest_from_text
from gateway.logs import exception_summary
from gateway.lookup.registry import ConnectorSet, System

if TYPE_CHECKING:
    from collections.abc import Awaitable, Callable, Iterator, Sequence

    from connectors.manifest import Manifest
    from gateway.lookup.registry import Registry
    from gateway.settings import RegistrySettings

__all__ = ["MANAGE_SCOPE", "RegistrationError", "Registrations", "files_problem", "initial_set",
           "may_change"]

log = logging.getLogger("contactpoint.registry")

MANAGE_SCOPE = "connectors.manage"
"""The scope that lets a token change the systems of its `authority` claim (and no others)."""
_MAX_MANIFEST_BYTES = 64 * 1024
_AUTHORITY = re.compile(r"[a-z0-9_-]+(:[a-z0-9_-]+)*")
_CHECK_SECONDS = 5.0


class RegistrationError(Exception):
    """A change refused: `status` for the HTTP answer, the message is its one-line reason."""

    def __init__(self, status: int, message: str) -> None:
        super().__init__(message)
        self.status = status
        self.message = message


def may_change(authority: str | None, current: System | None,
               new_authority: str | None) -> str | None:
    """Why a caller of `authority` may not change a system (None: it may). Pure.

    A caller may touch only a system whose present manifest (`current`, None
    for a new one) and new manifest (`new_authority`, None for a removal) both
    name its own authority: a council can neither take over another's system
    (nor the GP's) nor hand its own to someone else. There is no wildcard.
    """
    if not authority:
        return "the token has no authority claim"
    if current is not None and current.authority != authority:
        return f"{current.name} belongs to {current.authority}, not {authority}"
    if new_authority is not None and new_authority != authority:
        return f"the manifest's authority {new_authority} is not the token's {authority}"
    return None


def _paths(value: object) -> Iterator[Path]:
    if isinstance(value, Path):
        yield value
    elif isinstance(value, dict):
        for item in value.values():
            yield from _paths(item)


def files_problem(manifest: Manifest, secrets_dir: str | None) -> str | None:
    """Why a registered manifest may not name the files its `[auth]` names (None: it may).

    The gateway reads those files and sends what they hold to the system, so a
    registered manifest may name only files under its own authority's folder
    of `secrets_dir` (symbolic links resolved): never another council's secret,
    nor any other file of the gateway's host.
    """
    paths = list(_paths(manifest.auth.model_dump()))
    if not paths:
        return None
    if secrets_dir is None:
        return "auth: a registered manifest names no files unless [registry] secrets_dir is set"
    if not _AUTHORITY.fullmatch(manifest.authority):
        return f"auth: the authority {manifest.authority} cannot own files"
    allowed = (Path(secrets_dir) / manifest.authority.replace(":", ".")).resolve()
    for path in paths:
        if not path.is_absolute() or not path.resolve().is_relative_to(allowed):
            return f"auth: {path} is not in the secrets folder of {manifest.authority}"
    return None


def _digest(text: str) -> str:
    return hashlib.sha256(text.encode()).hexdigest()


def _read_dir(folder: Path) -> dict[str, str]:
    """Every `<name>.toml` in `folder`: name -> text (unreadable files are logged, skipped)."""
    found: dict[str, str] = {}
    for path in sorted(folder.glob("*.toml")):
        try:
            found[path.stem] = path.read_text(encoding="utf-8")
        except (OSError, UnicodeDecodeError) as exc:
            log.error(  # noqa: TRY400 -- the kind of error is the line; no traceback
                "registry %s: cannot be read (%s)", path.name, type(exc).__name__)
    return found


def initial_set(configured: Sequence[Manifest], authority: dict[str, tuple[str, ...]],
                settings: RegistrySettings, default_ttl: float) -> tuple[ConnectorSet,
                                                                          dict[str, str]]:
    """The systems to start with: `[[connectors]]`, then the registry directory's files.

    A registered file whose manifest is invalid is left out with a one-line
    error (the gateway starts without it). Returns the set and the digests of
    the files applied, for `watch`.
    """
    systems = {m.name: System(m, build_connector(m), configured=True) for m in configured}
    applied: dict[str, str] = {}
    for name, text in _read_dir(Path(settings.dir)).items() if settings.dir else ():
        try:
            manifest = _parse(name, text, settings, default_ttl)
        except RegistrationError as exc:
            log.error("registry %s.toml not in service: %s", name, exc.message)  # noqa: TRY400 -- one line is the message
            continue
        systems[name] = System(manifest, build_connector(manifest), configured=name in systems)
        applied[name] = _digest(text)
    for system in systems.values():
        log.info("connector %s in service: authority=%s version=%s (%s)", system.name,
                 system.authority, system.version,
                 "registered" if system.name in applied else "configured")
    return ConnectorSet(tuple(systems.values()), authority), applied


def _parse(name: str, text: str, settings: RegistrySettings, default_ttl: float) -> Manifest:
    try:
        manifest = manifest_from_text(text, f"{name}.toml", default_ttl)
    except ManifestError as exc:
        raise RegistrationError(400, str(exc)) from None
    if manifest.name != name:
        raise RegistrationError(400, f"manifest {name}.toml: name: {manifest.name!r} is not "
                                     f"the name registered, {name!r}")
    problem = files_problem(manifest, settings.secrets_dir)
    if problem is not None:
        raise RegistrationError(403, f"manifest {name}.toml: {problem}")
    return manifest


@dataclass(frozen=True, slots=True)
class Change:
    """A change about to be applied: what the audit event records before it happens."""

    action: str  # "connector.register" or "connector.remove"
    name: str
    authority: str
    version: str | None


class Registrations:
    """Applies registrations and removals to the `Registry`; see the module docstring."""

    def __init__(self, registry: Registry, settings: RegistrySettings, default_ttl: float,
                 configured: Sequence[Manifest], applied: dict[str, str]) -> None:
        self.registry = registry
        self._settings = settings
        self._folder = None if settings.dir is None else Path(settings.dir)
        self._default_ttl = default_ttl
        self._configured = {m.name: m for m in configured}
        self._applied = dict(applied)
        self._watcher: asyncio.Task[None] | None = None

    @property
    def enabled(self) -> bool:
        """Registration needs somewhere to keep it (`[registry] dir`)."""
        return self._folder is not None

    async def register(self, name: str, text: str, authority: str | None,
                       audit: Callable[[Change], Awaitable[None]]) -> System:
        """Validate, authorise, health-check, audit, persist and swap in `text` as `name`."""
        if len(text.encode()) > _MAX_MANIFEST_BYTES:
            raise RegistrationError(413, f"a manifest is at most {_MAX_MANIFEST_BYTES} bytes")
        manifest = _parse(name, text, self._settings, self._default_ttl)
        async with self.registry.lock:
            current = self.registry.current.get(name)
            reason = may_change(authority, current, manifest.authority)
            if reason is not None:
                raise RegistrationError(403, reason)
            system = System(manifest, build_connector(manifest),
                            configured=current is not None and current.configured)
            staged: Path | None = None
            try:
                await _checked(system)
                staged = self._stage(name, text)
                await audit(Change("connector.register", name, manifest.authority,
                                   system.version))
                staged.replace(staged.with_name(f"{name}.toml"))  # atomic: all or nothing
            except BaseException:
                await _close_quietly(system)
                if staged is not None:
                    staged.unlink(missing_ok=True)
                raise
            self._applied[name] = _digest(text)
            self.registry.swap(self.registry.current.with_system(system))
        log.info("connector %s registered: authority=%s version=%s", name, manifest.authority,
                 system.version)
        return system

    async def remove(self, name: str, authority: str | None,
                     audit: Callable[[Change], Awaitable[None]]) -> None:
        """Authorise, audit, delete the file and swap out the system `name`."""
        async with self.registry.lock:
            current = self.registry.current.get(name)
            if current is None:
                raise RegistrationError(404, f"no system {name} is in service")
            reason = may_change(authority, current, None)
            if reason is not None:
                raise RegistrationError(403, reason)
            if current.configured:
                raise RegistrationError(403, f"{name} is in the gateway's configuration: only "
                                             "the operator removes it (replacing it is allowed)")
            await audit(Change("connector.remove", name, current.authority, current.version))
            self._delete(name)
            self._applied.pop(name, None)
            self.registry.swap(self.registry.current.without(name))
        log.info("connector %s removed: authority=%s", name, current.authority)

    def _stage(self, name: str, text: str) -> Path:
        """`text` written and synced beside `<name>.toml`, for one rename to put in place.

        Written before the audit event, so that once the event is recorded only
        a rename (atomic: a reader never sees half a file) is left to fail.
        """
        assert self._folder is not None  # noqa: S101 -- the endpoint is off without a folder
        try:
            self._folder.mkdir(parents=True, exist_ok=True)
            handle, temporary = tempfile.mkstemp(dir=self._folder, prefix=f".{name}.",
                                                 suffix=".tmp")
            with os.fdopen(handle, "w", encoding="utf-8") as file:
                file.write(text)
                file.flush()
                os.fsync(file.fileno())
        except OSError as exc:
            raise RegistrationError(500, f"the registration could not be kept "
                                         f"({type(exc).__name__})") from None
        return Path(temporary)

    def _delete(self, name: str) -> None:
        assert self._folder is not None  # noqa: S101 -- the endpoint is off without a folder
        try:
            (self._folder / f"{name}.toml").unlink(missing_ok=True)
        except OSError as exc:
            raise RegistrationError(500, f"the registration could not be removed "
                                         f"({type(exc).__name__})") from None

    def start(self) -> None:
        """Watch the registry directory for other workers' changes (in the running loop)."""
        if self._folder is not None and self._watcher is None:
            self._watcher = asyncio.create_task(self._watch(), name="registry-watch")

    async def close(self) -> None:
        if self._watcher is not None:
            self._watcher.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._watcher
            self._watcher = None

    async def _watch(self) -> None:
        while True:
            await asyncio.sleep(self._settings.poll_seconds)
            try:
                await self.sync()
            except Exception as exc:  # noqa: BLE001 -- the watcher must outlive any one failure
                log.error("registry sync failed: %s", exception_summary(exc))  # noqa: TRY400

    async def sync(self) -> None:
        """Apply the directory's files that differ from what this worker applied.

        Another worker already validated, health-checked and audited them; this
        one checks health again before its own swap (and tries again next time
        if the system does not answer yet). A file gone reverts a configured
        system to its configuration, and takes any other out of service.
        """
        if self._folder is None:
            return
        found = await asyncio.to_thread(_read_dir, self._folder)
        for name, text in found.items():
            if self._applied.get(name) != _digest(text):
                await self._apply_file(name, text)
        for name in [n for n in self._applied if n not in found]:
            await self._revert(name)

    async def _apply_file(self, name: str, text: str) -> None:
        try:
            manifest = _parse(name, text, self._settings, self._default_ttl)
        except RegistrationError as exc:
            log.error("registry %s.toml not applied: %s", name, exc.message)  # noqa: TRY400 -- one line is the message
            self._applied[name] = _digest(text)  # the same bad file is not reported again
            return
        system = System(manifest, build_connector(manifest),
                        configured=name in self._configured)
        try:
            await _checked(system)
        except RegistrationError as exc:
            await _close_quietly(system)
            log.warning("registry %s.toml not applied yet: %s", name, exc.message)
            return
        async with self.registry.lock:
            if self._applied.get(name) == _digest(text):  # this worker applied it meanwhile
                await _close_quietly(system)
                return
            self._applied[name] = _digest(text)
            self.registry.swap(self.registry.current.with_system(system))
        log.info("connector %s registered (by another worker): authority=%s version=%s",
                 name, manifest.authority, system.version)

    async def _revert(self, name: str) -> None:
        async with self.registry.lock:
            self._applied.pop(name, None)
            configured = self._configured.get(name)
            current = self.registry.current
            if configured is not None:
                new = current.with_system(System(configured, build_connector(configured), True))
            elif current.get(name) is not None:
                new = current.without(name)
            else:
                return
            self.registry.swap(new)
        log.info("connector %s: registration withdrawn (by another worker)", name)


async def _checked(system: System) -> None:
    """The new connector's health check, bounded; refused in one line if it fails."""
    try:
        async with asyncio.timeout(min(_CHECK_SECONDS, system.manifest.timeout_seconds * 2)):
            await system.connector.check()
    except (ConnectorError, TimeoutError) as exc:
        raise RegistrationError(422, f"{system.name} failed its health check "
                                     f"({type(exc).__name__}): not registered") from None


async def _close_quietly(system: System) -> None:
    try:
        await close_all([system.connector])
    except ExceptionGroup as group:
        log.warning("closing the refused connector %s failed: %s", system.name,
                    exception_summary(group.exceptions[0]))
