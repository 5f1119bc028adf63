"""Connector manifests: a local system described in TOML, validated as strictly as settings.

A manifest says what a system is (name, kind, who is responsible for it),
where it is and how to reach it (base URL, timeout, auth), what it knows
(`provides`, `records_shielding`, `membership_sensitive`) and, for a
`rest_json` system, its paths, parameters and the declarative mapping from
its JSON to the gateway's facts. Built-in manifests live beside this module
in `manifests/`; a council's own is any ``.toml`` file. Every mistake is a
`ManifestError` whose one-line message names the file and the key.
"""

from __future__ import annotations

import re
import tomllib
from pathlib import Path
from typing import Annotated, Any, Literal

from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    ValidationError,
    field_validator,
    model_validator,
)

from connectors.fhir import NHS_NUMBER_SYSTEM
from connectors.mapping import FACT_NAMES, MappingSpecError, RecordMapper, compile_mapping

__all__ = [
    "BUILTIN_DIR",
    "FHIR_FACTS",
    "AuthSpec",
    "ChallengeSpec",
    "ClientCertificate",
    "FhirSpec",
    "HeaderAuth",
    "Manifest",
    "ManifestError",
    "MtlsAuth",
    "NoAuth",
    "NotificationSpec",
    "OAuth2ClientCredentials",
    "PythonSpec",
    "ResilienceSpec",
    "RestSpec",
    "load_manifest",
    "manifest_from_dict",
    "manifest_path",
]

BUILTIN_DIR = Path(__file__).with_name("manifests")
FHIR_FACTS = frozenset({"name", "date_of_birth", "gender", "address", "practice"})
"""What a FHIR R4 Patient (with its general practice) can state."""

_NAME = r"^[a-z][a-z0-9_-]{0,31}$"
_PATH = r"^/[A-Za-z0-9._~!$&'()*+,;=:@/{}-]*$"
_PARAMETER = r"^[A-Za-z][A-Za-z0-9._-]{0,63}$"


class ManifestError(Exception):
    """A manifest is missing or invalid; the message is one line naming the file and key."""


class _Strict(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")


class NoAuth(_Strict):
    """No authentication: the system trusts the network the gateway calls from."""

    type: Literal["none"] = "none"


_SECRET_KEYS = {"client_secret": "client_secret_file", "secret": "client_secret_file",
                "value": "value_file", "key": "key_file", "private_key": "key_file",
                "password": "a file", "token": "a file", "access_token": "a file"}
"""Keys someone may write a secret under, and the key that names its file instead."""

_LOOPBACK_HTTP = r"^(https://|http://(127\.0\.0\.1|localhost|\[::1\])(:[0-9]+)?/)"


class _AuthPart(_Strict):
    """Refuses a secret written into the manifest, with the key to use instead.

    A manifest holds paths only; the files are read when the connector is built
    (`connectors.upstream_auth`), so a manifest can be shared, printed and diffed.
    """

    @model_validator(mode="before")
    @classmethod
    def _no_inline_secret(cls, data: object) -> object:
        if isinstance(data, dict):
            for key in sorted(set(data) & set(_SECRET_KEYS)):
                raise ValueError(f"{key}: a manifest holds no secrets; give {_SECRET_KEYS[key]}"
                                 " (a path) instead")
        return data


class ClientCertificate(_AuthPart):
    """A TLS client certificate (mutual TLS): PEM files, and the CA of the system's certificate.

    `ca_file` absent: the system's certificate is checked against the default trust store.
    """

    cert_file: Path
    key_file: Path
    """Unencrypted PEM: the gateway does not prompt for a passphrase."""
    ca_file: Path | None = None


class MtlsAuth(ClientCertificate):
    """Mutual TLS alone: the client certificate is the credential."""

    type: Literal["mtls"]


class OAuth2ClientCredentials(_AuthPart):
    """OAuth 2.0 client credentials grant (RFC 6749 4.4): a bearer token on every request.

    The token is fetched once and reused until `renew_before_seconds` before it expires
    (or until the system answers 401, which forces one renewal and one retry).
    """

    type: Literal["oauth2_client_credentials"]
    token_url: str
    """https, or http to loopback only (a test token endpoint): the secret crosses it."""
    client_id: str = Field(min_length=1, max_length=256)
    client_secret_file: Path
    client_auth: Literal["client_secret_basic", "client_secret_post"] = "client_secret_basic"
    scope: str | None = Field(default=None, min_length=1, max_length=1024)
    audience: str | None = Field(default=None, min_length=1, max_length=1024)
    renew_before_seconds: Annotated[float, Field(ge=0, le=3600)] = 30.0
    client_certificate: ClientCertificate | None = None
    """Mutual TLS to the system as well (not to the token endpoint)."""

    @field_validator("token_url")
    @classmethod
    def _https(cls, url: str) -> str:
        if not re.match(_LOOPBACK_HTTP, url):
            raise ValueError("must be an https:// URL (http:// only to 127.0.0.1 or localhost)")
        return url


class HeaderAuth(_AuthPart):
    """A static header (an API key) on every request, its value read from a file."""

    type: Literal["header"]
    name: str = Field(pattern=r"^[A-Za-z0-9!#$%&'*+.^_`|~-]{1,64}$")
    value_file: Path
    client_certificate: ClientCertificate | None = None
    """Mutual TLS to the system as well."""


AuthSpec = Annotated[NoAuth | MtlsAuth | OAuth2ClientCredentials | HeaderAuth,
                     Field(discriminator="type")]
"""How the gateway authenticates to the system (`[auth]`, chosen by its `type`)."""


class RestLookup(_Strict):
    """`GET {path}?{nhs_parameter}=...`; the records are the array at `records`."""

    path: str = Field(pattern=_PATH)
    nhs_parameter: str = Field(pattern=_PARAMETER)
    records: str = Field(pattern=r"^[A-Za-z0-9_-]+(\.[A-Za-z0-9_-]+)*$")
    """The JSON path of the array of records in an answer (e.g. ``"data.youngPeople"``)."""


class RestSearch(_Strict):
    """Exact demographic search: the system's parameter name for each attribute."""

    path: str | None = Field(default=None, pattern=_PATH)
    """Default: the lookup path."""
    family_name: str = Field(pattern=_PARAMETER)
    date_of_birth: str = Field(pattern=_PARAMETER)
    given_name: str | None = Field(default=None, pattern=_PARAMETER)
    postcode: str | None = Field(default=None, pattern=_PARAMETER)
    date_format: str = "%Y-%m-%d"


class RestHealth(_Strict):
    """`GET {path}`: healthy when every JSON path in `expect` holds its value."""

    path: str = Field(pattern=_PATH)
    expect: dict[str, str | bool | int] = Field(default_factory=dict)


class RestSpec(_Strict):
    lookup: RestLookup
    search: RestSearch | None = None
    health: RestHealth


class FhirSpec(_Strict):
    """A FHIR R4 server: Patients by identifier, practices as Organizations."""

    identifier_system: str = NHS_NUMBER_SYSTEM
    resources: tuple[Literal["Patient", "Organization"], ...] = ("Patient", "Organization")
    """Organization: the practice is read (included with `_include`, else read by id)."""
    include_practice: bool = True
    """Ask for the practice with `_include=Patient:general-practitioner`."""

    @model_validator(mode="after")
    def _patient(self) -> FhirSpec:
        if "Patient" not in self.resources:
            raise ValueError("resources must include Patient")
        return self


class PythonSpec(_Strict):
    """A plugin class found by its name in the entry-point group `contactpoint.connectors`."""

    plugin: str = Field(pattern=r"^[A-Za-z0-9_.-]{1,64}$")
    options: dict[str, Any] = Field(default_factory=dict)



class NotificationSpec(_Strict):
    """`POST {path}` takes the notifications the gateway sends this system's authority
    (CP-IS style: a child it is responsible for was looked up; see the README)."""

    path: str = Field(pattern=_PATH)


class ChallengeSpec(_Strict):
    """Where the system takes challenges to a value it supplied (`POST {path}`, state at
    `GET {path}/{reference}`), and whom to contact about its records otherwise."""

    path: str | None = Field(default=None, pattern=_PATH)
    """None: the system takes no challenges through the gateway (callers are told `contact`)."""
    contact: str = Field(min_length=1, max_length=200)
    """Whom to contact about a wrong value in this system (a team, an address, a phone)."""


class ResilienceSpec(_Strict):
    """How calls to the system survive its failures (`connectors.resilience`).

    Retries (of transient failures only: unreachable, timeout, 5xx) are at most `attempts`
    in all, with full-jitter back-off, and only while a retry budget allows: retries may be
    `retry_budget_ratio` of the last 10 s of calls plus `min_retries_per_second`.
    `breaker_failures` consecutive failed calls open the circuit for `breaker_open_seconds`;
    at most `max_concurrent` calls are in flight to the system at once.
    """

    attempts: Annotated[int, Field(ge=1, le=5)] = 2
    backoff_base_ms: Annotated[float, Field(ge=0, le=10_000)] = 50.0
    backoff_cap_ms: Annotated[float, Field(ge=0, le=10_000)] = 500.0
    retry_budget_ratio: Annotated[float, Field(ge=0, le=1)] = 0.2
    min_retries_per_second: Annotated[float, Field(ge=0, le=1_000)] = 1.0
    breaker_failures: Annotated[int, Field(ge=1, le=1_000)] = 5
    breaker_open_seconds: Annotated[float, Field(gt=0, le=600)] = 10.0
    max_concurrent: Annotated[int, Field(ge=1, le=10_000)] = 50

    @model_validator(mode="after")
    def _cap_above_base(self) -> ResilienceSpec:
        if self.backoff_cap_ms < self.backoff_base_ms:
            raise ValueError("backoff_cap_ms must be at least backoff_base_ms")
        return self


class Manifest(_Strict):
    """One system, as its manifest describes it."""

    name: str = Field(pattern=_NAME)
    kind: Literal["rest_json", "fhir_r4", "python"]
    description: str = ""
    authority: str = Field(min_length=1, max_length=64)
    """Who is responsible for the system (e.g. ``"council:leeds"``): the only party that
    may register, replace or remove it."""
    base_url: str | None = Field(default=None, pattern=r"^https?://")
    timeout_seconds: Annotated[float, Field(gt=0, le=30)] = 2.0
    cache_ttl_seconds: Annotated[float | None, Field(ge=0, le=300)] = None
    max_connections: Annotated[int, Field(ge=1, le=1_000)] = 100
    provides: tuple[str, ...] = Field(min_length=1)
    records_shielding: bool = False
    """The system records shielding: every record must state it, and its silence (no
    answer) makes a child count as shielded."""
    membership_sensitive: bool = False
    """That this system knows a child is itself sensitive (youth justice, sexual health):
    it is named as a source only to callers who are released the child's services."""
    auth: AuthSpec = NoAuth()
    resilience: ResilienceSpec = ResilienceSpec()
    rest: RestSpec | None = None
    fhir: FhirSpec | None = None
    python: PythonSpec | None = None
    mapping: dict[str, Any] | None = None
    notifications: NotificationSpec | None = None
    """Where the system's authority takes notifications (None: it takes none)."""
    challenges: ChallengeSpec | None = None
    """Where the system takes challenges to its values (None: none, and no contact named)."""

    @model_validator(mode="after")
    def _sections_fit_the_kind(self) -> Manifest:
        wanted = {"rest_json": "rest", "fhir_r4": "fhir", "python": "python"}[self.kind]
        for section in ("rest", "fhir", "python"):
            present = getattr(self, section) is not None
            if section == wanted and not present and section != "fhir":
                raise ValueError(f"kind {self.kind} needs a [{section}] table")
            if section != wanted and present:
                raise ValueError(f"[{section}] does not belong to kind {self.kind}")
        if (self.mapping is not None) != (self.kind == "rest_json"):
            raise ValueError("[mapping] is for kind rest_json only, and rest_json needs one")
        unknown = sorted(set(self.provides) - FACT_NAMES)
        if unknown:
            raise ValueError(f"provides: {unknown[0]!r} is not a fact (one of "
                             f"{', '.join(sorted(FACT_NAMES))})")
        if len(set(self.provides)) != len(self.provides):
            raise ValueError("provides lists a fact twice")
        if ("shielded" in self.provides) != self.records_shielding:
            raise ValueError("provides includes shielded exactly when records_shielding = true")
        if self.kind == "fhir_r4" and not set(self.provides) <= FHIR_FACTS:
            extra = sorted(set(self.provides) - FHIR_FACTS)
            raise ValueError(f"a FHIR R4 Patient cannot state {', '.join(extra)}")
        return self

    @property
    def facts(self) -> frozenset[str]:
        return frozenset(self.provides)

    def mapper(self, label: str = "record") -> RecordMapper:
        """The compiled mapping (kind rest_json); raises `MappingSpecError`."""
        explicit = frozenset({"shielded"}) if self.records_shielding else frozenset()
        return compile_mapping(self.mapping or {}, self.facts, explicit=explicit, label=label)


def _one_line(exc: ValidationError) -> str:
    error = exc.errors()[0]
    where = ".".join(str(part) for part in error["loc"]) or "(top level)"
    more = len(exc.errors()) - 1
    return f"{where}: {error['msg']}" + (f" (and {more} more)" if more else "")


def manifest_from_dict(data: dict[str, Any], origin: str) -> Manifest:
    """Validate a manifest tree (and compile its mapping); raises `ManifestError`."""
    try:
        manifest = Manifest.model_validate(data)
        if manifest.kind == "rest_json":
            manifest.mapper()
    except ValidationError as exc:
        raise ManifestError(f"manifest {origin}: {_one_line(exc)}") from None
    except MappingSpecError as exc:
        raise ManifestError(f"manifest {origin}: {exc}") from None
    return manifest


def manifest_path(reference: str) -> Path:
    """A built-in manifest by name (``"council"``), or the path of a council's own file."""
    if "/" not in reference and not reference.endswith(".toml"):
        return BUILTIN_DIR / f"{reference}.toml"
    return Path(reference)


def load_manifest(reference: str | Path) -> Manifest:
    """Read and validate a manifest; raises `ManifestError` with a one-line reason."""
    path = reference if isinstance(reference, Path) else manifest_path(reference)
    try:
        data = tomllib.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise ManifestError(f"manifest {path}: no such file") from None
    except OSError as exc:
        raise ManifestError(f"manifest {path}: cannot be read ({exc.strerror})") from None
    except (tomllib.TOMLDecodeError, UnicodeDecodeError) as exc:
        raise ManifestError(f"manifest {path}: not valid TOML ({exc})") from None
    return manifest_from_dict(data, path.name)
