"""Configuration: the only module that reads the environment.

Settings come from an optional TOML file and a few environment variables, are
validated once at start-up into frozen objects (unknown keys rejected), and are
passed in explicitly; nothing imports a global settings object. Secrets are
`SecretStr`, whose repr is masked.
"""

from __future__ import annotations

import datetime as dt
import os
import re
import tomllib
from pathlib import Path
from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field, SecretStr, ValidationError, model_validator

from gateway.core.case_reference import DEFAULT_CASE_REFERENCE_PATTERN
from gateway.core.merge import SINGLE_FACTS

__all__ = [
    "AlertSettings",
    "AuditSettings",
    "AuthSettings",
    "BudgetLimits",
    "BudgetSettings",
    "CacheSettings",
    "CaseReferenceSettings",
    "ConfigError",
    "ConnectorSettings",
    "IdSettings",
    "LimitSettings",
    "MergeSettings",
    "NotificationSettings",
    "OutboxSettings",
    "RegistrySettings",
    "RuntimeSettings",
    "Settings",
    "SubjectAccessSettings",
    "check_production",
    "load_settings",
    "production_problem",
]

MFA_DEFAULT = ("mfa", "otp", "hwk", "sc")
DEVELOPMENT_ISSUER = "https://dev-issuer.contactpoint.invalid"
"""The demo's token issuer, whose signing key is public by design: never in production."""
ASYMMETRIC_ALGORITHMS = frozenset(
    {"RS256", "RS384", "RS512", "PS256", "PS384", "PS512", "ES256", "ES384", "ES512", "EdDSA"}
)


_ORIGIN = re.compile(r"https?://(\[[0-9A-Fa-f:.]+\]|[A-Za-z0-9.-]+)(:[0-9]{1,5})?")


class ConfigError(Exception):
    """The configuration is invalid; the message is one line, fit for a terminal."""


class _Frozen(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")


class AuthSettings(_Frozen):
    """How bearer tokens are checked (RFC 9068 access tokens)."""

    issuer: str = Field(min_length=1)
    audience: str = Field(min_length=1)
    jwks_url: str = Field(pattern=r"^https?://")
    algorithms: tuple[str, ...] = ("ES256", "RS256", "PS256", "EdDSA")
    leeway_seconds: Annotated[int, Field(ge=0, le=10)] = 10
    mfa_values: tuple[str, ...] = MFA_DEFAULT
    jwks_cache_seconds: Annotated[int, Field(ge=10, le=86_400)] = 600
    jwks_refresh_min_seconds: Annotated[float, Field(ge=0, le=3_600)] = 30.0
    jwks_timeout_seconds: Annotated[float, Field(gt=0, le=30)] = 3.0
    jwks_max_stale_seconds: Annotated[int, Field(ge=0, le=86_400)] = 1_800
    """How long past `jwks_cache_seconds` the last key set is still used while refreshes
    fail; after that no token is accepted (503) and `/readyz` is unready."""
    max_token_bytes: Annotated[int, Field(ge=512, le=65_536)] = 8_192
    dpop: Literal["optional", "required"] = "optional"
    """RFC 9449: "required" refuses every token not bound to a key (`cnf.jkt`) and proved
    with a DPoP proof; "optional" requires that only of bound tokens."""
    dpop_required_clients: tuple[str, ...] = ()
    """`client_id`s that must use DPoP even when `dpop` is "optional"."""
    dpop_proof_window_seconds: Annotated[int, Field(ge=5, le=300)] = 60
    """How far a proof's `iat` may be from now, either way; its `jti` is remembered
    for twice this."""
    dpop_public_url: str | None = Field(default=None, pattern=r"^https?://")
    """The `/graphql` URL clients use, when a proxy makes it differ from what the
    gateway sees; proofs' `htu` must then equal it. Unset: the request's own URL."""

    @model_validator(mode="after")
    def _asymmetric_only(self) -> AuthSettings:
        bad = sorted(set(self.algorithms) - ASYMMETRIC_ALGORITHMS)
        if bad or not self.algorithms:
            raise ValueError(f"algorithms must be asymmetric JWS algorithms, not {bad}")
        if not self.mfa_values:
            raise ValueError("mfa_values must name at least one amr value")
        return self


class CacheSettings(_Frozen):
    """The short-lived, encrypted cache of source answers."""

    redis_url: str | None = None
    key_prefix: str = Field(default="cpg:", pattern=r"^[A-Za-z0-9:_-]{1,32}$")
    secret: SecretStr = Field(min_length=32)
    default_ttl_seconds: Annotated[float, Field(ge=0, le=300)] = 30.0
    redis_timeout_seconds: Annotated[float, Field(gt=0, le=5)] = 0.25
    redis_retry_seconds: Annotated[float, Field(ge=0, le=300)] = 5.0
    memory_max_entries: Annotated[int, Field(ge=1, le=1_000_000)] = 20_000


class IdSettings(_Frozen):
    """Opaque child ids: AES-SIV of (NHS number, client, epoch)."""

    secret: SecretStr = Field(min_length=32)
    lifetime_seconds: Annotated[int, Field(ge=60, le=7 * 86_400)] = 86_400


class LimitSettings(_Frozen):
    """Request-shape limits applied before any resolver runs."""

    max_body_bytes: Annotated[int, Field(ge=1_024, le=1_048_576)] = 65_536
    max_depth: Annotated[int, Field(ge=2, le=30)] = 8
    max_aliases: Annotated[int, Field(ge=1, le=200)] = 15
    max_tokens: Annotated[int, Field(ge=50, le=100_000)] = 2_000
    max_children_per_request: Annotated[int, Field(ge=1, le=100)] = 10
    parser_cache_size: Annotated[int, Field(ge=0, le=100_000)] = 512
    execution_plans: bool = True
    """Run a query document that has passed validation from its execution plan
    (`resolvers.plans`: no resolver call per field) from its second request on; false:
    every request through strawberry's executor. Parsed documents, validation results and
    plans are each kept for at most `parser_cache_size` documents."""
    max_directives: Annotated[int, Field(ge=1, le=500)] = 50
    """Directives in one document, fragments included (GraphQL Armor's default)."""
    max_json_depth: Annotated[int, Field(ge=2, le=64)] = 32
    """Nesting of arrays and objects in `variables` and `extensions`; kept far below
    Python's recursion limit, since coercion and encoding recurse."""
    max_repeats: Annotated[int, Field(ge=1, le=1_000)] = 20
    """Occurrences of one field (response key) in one selection set (field duplication)."""
    max_cost: Annotated[int, Field(ge=50, le=100_000)] = 1_500
    """Static cost of a document (see `resolvers.cost`): every field of one child costs
    about 250, each child looked up 10 more."""
    max_errors: Annotated[int, Field(ge=1, le=1_000)] = 20
    """Errors in one response; any more are replaced by one `ERRORS_TRUNCATED` error."""
    header_read_seconds: Annotated[float, Field(ge=0.1, le=120)] = 5.0
    """A client has this long to send a request's line and headers (from connecting, or
    from its first byte after a kept-alive response); then the connection is closed."""
    body_read_seconds: Annotated[float, Field(ge=0.1, le=300)] = 10.0
    """...and this long, once the headers are in, to send the whole body (408, closed)."""


class ConnectorSettings(_Frozen):
    """One source system: its manifest, and what this deployment overrides of it."""

    name: str = Field(pattern=r"^[a-z][a-z0-9_-]{0,31}$")
    manifest: str = Field(min_length=1)
    """A built-in manifest by name (gp, school, council, youth_justice) or a TOML file path."""
    base_url: str | None = Field(default=None, pattern=r"^https?://")
    timeout_seconds: Annotated[float | None, Field(gt=0, le=30)] = None
    cache_ttl_seconds: Annotated[float | None, Field(ge=0, le=300)] = None
    max_connections: Annotated[int | None, Field(ge=1, le=1_000)] = None
    notice_secret: SecretStr | None = Field(default=None, min_length=32)
    """Shared secret for the system's signed "changed" notices (None: notices refused)."""


class RegistrySettings(_Frozen):
    """Systems registered while the gateway serves (`PUT /admin/connectors/{name}`)."""

    dir: str | None = None
    """Where registrations are kept, one `<name>.toml` each: read at start-up after
    `[[connectors]]`, and watched by every worker. None: the admin endpoint is off."""
    secrets_dir: str | None = None
    """The only place a registered manifest's `[auth]` may name files: under
    `<secrets_dir>/<authority with ':' as '.'>/` (e.g. `council.leeds/`), so a council
    cannot have the gateway read another's secret. None: registered manifests name none."""
    poll_seconds: Annotated[float, Field(ge=0.2, le=60)] = 2.0
    """How often each worker looks at `dir` for registrations another worker made."""
    drain_seconds: Annotated[float, Field(ge=1, le=600)] = 60.0
    """The longest a replaced or removed connector stays open for requests that began
    before the change (it closes as soon as they have all finished)."""


class CaseReferenceSettings(_Frozen):
    """The format of case references (they are written to the append-only audit log)."""

    pattern: str = DEFAULT_CASE_REFERENCE_PATTERN
    """A regular expression the whole reference must match; NHS numbers, postcodes and dates
    are refused whatever it allows."""
    description: str = Field(
        default="3 to 40 letters, digits, '/', '.' or '-', with at least one digit, as the "
        "case system issued it", min_length=1, max_length=200)
    """How the format is described to a caller whose reference does not match."""

    @model_validator(mode="after")
    def _compiles(self) -> CaseReferenceSettings:
        try:
            re.compile(self.pattern)
        except re.error as exc:
            raise ValueError(f"pattern is not a regular expression ({exc})") from None
        return self


class MergeSettings(_Frozen):
    """How the systems' answers about one child are merged."""

    authority: dict[str, tuple[str, ...]] = Field(default_factory=dict)
    """Per single-valued fact, the systems in order of precedence; systems not listed
    follow in configuration order. Lists (carers, services) are always the union."""


class AuditSettings(_Frozen):
    """The tamper-evident audit log, written before any data leaves."""

    store: Literal["sqlite", "postgresql", "none"] = "sqlite"
    sqlite_path: str = "contactpoint-audit.db"
    postgresql_dsn: SecretStr | None = None
    pseudonym_secret: SecretStr = Field(min_length=32)
    """HMAC key for child pseudonyms in the log; keep it for the log's lifetime."""
    checkpoint_key_file: str | None = None
    """PEM private key (Ed25519 or P-256) that signs checkpoints; None: derived from
    `pseudonym_secret` (fine for a demo, not for production)."""
    flush_interval_ms: Annotated[float, Field(ge=0, le=1_000)] = 0.0
    """How long a batch waits for more events. 0: commit as soon as the writer is free;
    events arriving during a commit form the next batch (measured: 1.1 ms per sequential
    PostgreSQL commit at 0, 4.0 ms at 2)."""
    load_wait_ms: Annotated[float, Field(ge=0, le=1_000)] = 2.0
    """Under load only (the last batch held more than one request's events), how long the
    next batch waits for more when `flush_interval_ms` is 0: fewer commits, each of which
    costs far more CPU than its size suggests (README "Where a request's CPU goes"). A
    lone request never waits. 0: off."""
    max_batch: Annotated[int, Field(ge=1, le=10_000)] = 256
    checkpoint_every: Annotated[int, Field(ge=1, le=1_000_000)] = 1_000
    checkpoint_interval_seconds: Annotated[float, Field(ge=0, le=3_600)] = 5.0
    """Also sign a checkpoint this often while there are events no checkpoint covers, so
    the newest events are vouched for within seconds. 0: only every `checkpoint_every`."""
    checkpoint_file: str | None = None
    """Append-only JSON-lines file where every checkpoint is also published, outside the
    store (ship it to a witness: a WORM store or a third party). None: not published, and
    a log cut short (newest events and their checkpoints deleted) cannot be detected."""
    timeout_seconds: Annotated[float, Field(gt=0, le=30)] = 2.0
    refusals_per_source_minute: Annotated[int, Field(ge=0, le=10_000)] = 5
    """Refused authentications and requests recorded one by one per source (pseudonymised
    peer address) and minute; the rest are counted and recorded as one summary event."""
    refusals_per_minute: Annotated[int, Field(ge=0, le=100_000)] = 200
    """The same, across all sources: an unauthenticated flood from many addresses writes
    at most this many single events a minute, plus one summary per source."""

    @model_validator(mode="after")
    def _postgresql_needs_dsn(self) -> AuditSettings:
        if self.store == "postgresql" and self.postgresql_dsn is None:
            raise ValueError("postgresql_dsn is required when store = \"postgresql\"")
        return self

    @model_validator(mode="after")
    def _load_wait_within_timeout(self) -> AuditSettings:
        # Waiting for company must never cost the callers their whole timeout (they would
        # fail closed). `flush_interval_ms` is left as it was: tests use it to force that.
        if self.load_wait_ms >= self.timeout_seconds * 1000 / 2:
            raise ValueError("load_wait_ms must be under half of timeout_seconds")
        return self


class OutboxSettings(_Frozen):
    """The durable outbox: messages to other systems (challenges, notifications), retried
    until acknowledged; payloads encrypted at rest and deleted once delivered."""

    sqlite_path: str = "contactpoint-outbox.db"
    secret: SecretStr | None = Field(default=None, min_length=32)
    """Key material for the payload encryption; None: derived from `audit.pseudonym_secret`
    (a separate key either way: HKDF with its own purpose)."""
    poll_seconds: Annotated[float, Field(gt=0, le=60)] = 1.0
    max_backoff_seconds: Annotated[float, Field(gt=0, le=86_400)] = 300


class NotificationSettings(_Frozen):
    """CP-IS style notifications: the authority responsible for a child on a child-protection
    plan, or looked after, is told when the child's record is released (see the README)."""

    enabled: bool = True
    include_subject: bool = False
    """Also tell the authority the looker's own identifier (the token's `sub`). Off: only
    organisation and roles, as CP-IS does."""


class BudgetLimits(_Frozen):
    """Distinct children one subject or organisation may look up."""

    subject_per_hour: Annotated[int, Field(ge=1)] = 20
    subject_per_day: Annotated[int, Field(ge=1)] = 50
    organisation_per_hour: Annotated[int, Field(ge=1)] = 100
    """Five subjects' hourly budgets: colluding subjects of one organisation cannot
    multiply their reach past it, and its 80 % alert tells the privacy officer first."""
    organisation_per_day: Annotated[int, Field(ge=1)] = 2_000


class BudgetSettings(_Frozen):
    """Harvesting budgets and request-rate limits, counted in Redis."""

    default: BudgetLimits = BudgetLimits()
    roles: dict[str, BudgetLimits] = Field(default_factory=dict)
    """Per-role limits, chosen by the token's `roles` claim (the most generous wins)."""
    alert_ratio: Annotated[float, Field(gt=0, lt=1)] = 0.8
    subject_requests_per_minute: Annotated[int, Field(ge=1)] = 120
    client_requests_per_minute: Annotated[int, Field(ge=1)] = 3_000
    burst: Annotated[int, Field(ge=1)] = 20
    per_process_accepted: bool = False
    """Production without Redis: accept that each process counts budgets on its own (so N
    processes allow N times the budget). Without it, production refuses to start."""
    processes: Annotated[int, Field(ge=1, le=1_000)] = 1
    """How many gateway processes share the budgets: while counting without Redis, each
    enforces only its share (every limit ÷ processes), so more processes give no more."""
    when_redis_down: Literal["share", "refuse"] = "share"
    """Redis configured but not answering: "share" counts locally (each process its share),
    "refuse" answers lookups 503 BUDGETS_UNAVAILABLE until it is back."""
    local_state_file: str | None = None
    """Where a process keeps what it counted without Redis (HMACs only), so a restart does
    not give fresh budget. None: counts are lost on restart."""
    baseline_ratio: Annotated[float, Field(gt=1, le=100)] = 3.0
    """Alert when an organisation looks up more distinct children in an hour than this
    multiple of its usual hourly rate (its baseline, learnt from earlier hours)."""
    baseline_floor: Annotated[int, Field(ge=1)] = 10
    """...but never for an hour of fewer children than this (quiet organisations)."""
    baseline_hours: Annotated[int, Field(ge=1, le=24 * 90)] = 168
    """How many hours the baseline averages over (a week by default)."""


class AlertSettings(_Frozen):
    """Where the privacy officer's alerts go (pseudonyms only)."""

    sink: Literal["file", "webhook"] = "file"
    path: str = "contactpoint-alerts.jsonl"
    webhook_url: str | None = Field(default=None, pattern=r"^https?://")
    digest: bool = True
    """Send each organisation's daily digest (counts only) to the same sink."""
    digest_at: dt.time = dt.time(7, 0)
    """When, in England ("HH:MM"), the digest of the previous day goes out."""


class HttpSettings(_Frozen):
    """What browsers on other origins may do (CORS)."""

    cors_origins: tuple[str, ...] = ()
    """Exact origins allowed to call the API from a browser, such as
    "https://dashboard.council.gov.uk" (scheme, host and port; no path, no wildcard)."""
    cors_allow_loopback: bool = False
    """Also allow any http://127.0.0.1:PORT, http://localhost:PORT or http://[::1]:PORT
    origin (development only: the demo's pages)."""
    cors_max_age_seconds: Annotated[int, Field(ge=0, le=86_400)] = 600
    """How long a browser may cache a preflight answer."""

    @model_validator(mode="after")
    def _exact_origins(self) -> HttpSettings:
        for origin in self.cors_origins:
            if not _ORIGIN.fullmatch(origin):
                raise ValueError(f"cors_origins: {origin!r} is not an exact origin "
                                 "(scheme://host[:port], no path and no wildcard)")
        return self


class DocumentSettings(_Frozen):
    """Which GraphQL documents the gateway runs: any, automatically persisted, or trusted."""

    manifest: str | None = None
    """Trusted documents: a JSON file mapping SHA-256 hashes to documents (GraphQL Code
    Generator's client preset `persisted-documents.json`, or Apollo's persisted query
    manifest), requested by `documentId`. Parsed and validated once, at start-up."""
    trusted_only: bool | None = None
    """Refuse any document not in the manifest. None: true in production (where a manifest
    is then required), false in development."""
    automatic_persisted_queries: bool | None = None
    """Apollo's automatic persisted queries (`extensions.persistedQuery`). None: on in
    development only (in production a hash must name a trusted document)."""
    apq_max_entries: Annotated[int, Field(ge=1, le=100_000)] = 1_000

    def refuses_others(self, development: bool) -> bool:
        return (not development) if self.trusted_only is None else self.trusted_only

    def apq(self, development: bool) -> bool:
        return development if self.automatic_persisted_queries is None \
            else self.automatic_persisted_queries


class TelemetrySettings(_Frozen):
    """Metrics, traces and logs (none of them ever carries a child's data)."""

    metrics: bool = True
    """Serve `GET /metrics` (Prometheus text format)."""
    metrics_token: SecretStr | None = Field(default=None, min_length=32)
    """If set, /metrics needs `Authorization: Bearer <metrics_token>`."""
    otlp_endpoint: str | None = Field(default=None, pattern=r"^https?://")
    """OTLP/HTTP traces endpoint (such as http://collector:4318/v1/traces); None: no spans
    are made (an incoming `traceparent` still reaches the logs as `trace_id`)."""
    service_name: str = Field(default="contactpoint-gateway", min_length=1, max_length=100)
    log_format: Literal["json", "text"] = "json"


class RuntimeSettings(_Frozen):
    """The Python runtime under load: the garbage collector (`gateway.web.gctuning`)."""

    gc_gen0_threshold: Annotated[int, Field(ge=700, le=1_000_000)] = 50_000
    """Allocations between two young-generation collections once started (Python's
    default is 700): fewer collections, each a little longer. Objects alive after
    start-up and warm-up are frozen out of collection either way."""


PURPOSES = ("SAFEGUARDING", "EARLY_HELP", "EDUCATION", "HEALTH_CARE", "SOCIAL_CARE",
            "YOUTH_JUSTICE")
SCOPES = ("child.identity.read", "child.contact.read", "child.education.read",
          "child.health.read", "child.services.read", "child.sensitive.read",
          "child.shielded.read", "child.protection.read")


class SubjectAccessSettings(_Frozen):
    """What `accessReport` keeps from the child or parent (`subject.self`) so as not to tip off.

    A release under one of `withhold_purposes` is left out of a `subject.self` report for
    `withhold_days` after it was made (and while its case is open, once the system holding
    the case states that). The data protection officer (`audit.read`) always sees it,
    marked. SAFEGUARDING alone by default: see README "Who looked at my child?".
    """

    withhold_purposes: tuple[str, ...] = ("SAFEGUARDING",)
    withhold_days: Annotated[int, Field(ge=0, le=3_650)] = 183

    @model_validator(mode="after")
    def _known(self) -> SubjectAccessSettings:
        unknown = sorted(set(self.withhold_purposes) - set(PURPOSES))
        if unknown:
            raise ValueError(f"withhold_purposes: unknown purposes {unknown}")
        return self


class Settings(_Frozen):
    """The whole gateway configuration."""

    mode: Literal["production", "development"] = "production"
    auth: AuthSettings
    cache: CacheSettings
    ids: IdSettings
    limits: LimitSettings = LimitSettings()
    connectors: tuple[ConnectorSettings, ...] = Field(min_length=1)
    merge: MergeSettings = MergeSettings()
    case_references: CaseReferenceSettings = CaseReferenceSettings()
    audit: AuditSettings
    budgets: BudgetSettings = BudgetSettings()
    alerts: AlertSettings = AlertSettings()
    http: HttpSettings = HttpSettings()
    documents: DocumentSettings = DocumentSettings()
    telemetry: TelemetrySettings = TelemetrySettings()
    registry: RegistrySettings = RegistrySettings()
    notifications: NotificationSettings = NotificationSettings()
    subject_access: SubjectAccessSettings = SubjectAccessSettings()
    outbox: OutboxSettings = OutboxSettings()
    runtime: RuntimeSettings = RuntimeSettings()
    purposes: dict[str, tuple[str, ...]] | None = None
    """Scopes each purpose may use; None keeps the policy file's table. Purposes left out
    of a given table permit nothing."""

    @model_validator(mode="after")
    def _known_purposes(self) -> Settings:
        for purpose, scopes in (self.purposes or {}).items():
            if purpose not in PURPOSES:
                raise ValueError(f"purposes: unknown purpose {purpose!r}")
            unknown = sorted(set(scopes) - set(SCOPES))
            if unknown:
                raise ValueError(f"purposes.{purpose}: unknown scopes {unknown}")
        return self

    @model_validator(mode="after")
    def _unique_connectors(self) -> Settings:
        names = [c.name for c in self.connectors]
        if len(set(names)) != len(names):
            raise ValueError("connector names must be unique")
        for fact, systems in self.merge.authority.items():
            if fact not in SINGLE_FACTS:
                raise ValueError(f"merge.authority.{fact}: not a single-valued fact (one of "
                                 f"{', '.join(SINGLE_FACTS)})")
            unknown = sorted(set(systems) - set(names))
            if unknown:
                raise ValueError(f"merge.authority.{fact}: no configured system {unknown[0]!r}")
        return self

    @property
    def development(self) -> bool:
        return self.mode == "development"


def production_problem(settings: Settings) -> str | None:
    """Why `settings` may not serve in production (None: safe, or not production).

    Checked by `serve`, `config check` and the app's start-up (not by the audit
    commands, which read the log with whatever configuration wrote it).

    Production is safe or it does not start: children's data is never released
    unaudited, under the demo's public signing key, or against budgets that each
    process counts on its own unless that is explicitly accepted.
    """
    if settings.development:
        return None
    if settings.audit.store == "none":
        return ('production needs an audit store: [audit] store = "sqlite" or "postgresql" '
                "(data is never released unaudited)")
    if settings.auth.issuer == DEVELOPMENT_ISSUER:
        return "production refuses the development token issuer (its signing key is public)"
    if settings.cache.redis_url is None and not settings.budgets.per_process_accepted:
        return ("production needs Redis for budgets shared by every process ([cache] redis_url),"
                " or [budgets] per_process_accepted = true")
    if settings.http.cors_allow_loopback:
        return "production refuses [http] cors_allow_loopback (any local page could call it)"
    if settings.documents.refuses_others(False) and settings.documents.manifest is None:
        return ("production runs trusted documents only: set [documents] manifest, or "
                "trusted_only = false to accept any document")
    if settings.audit.checkpoint_file is None:
        return ("production needs [audit] checkpoint_file: checkpoints published outside the "
                "store, without which a log cut short cannot be detected")
    return None


# Environment variables and where they land in the configuration tree.
ENVIRONMENT = {
    "CONTACTPOINT_MODE": ("mode",),
    "REDIS_URL": ("cache", "redis_url"),
    "CONTACTPOINT_CACHE_SECRET": ("cache", "secret"),
    "CONTACTPOINT_ID_SECRET": ("ids", "secret"),
    "CONTACTPOINT_AUDIT_SECRET": ("audit", "pseudonym_secret"),
    "CONTACTPOINT_AUDIT_DSN": ("audit", "postgresql_dsn"),
    "CONTACTPOINT_AUTH_ISSUER": ("auth", "issuer"),
    "CONTACTPOINT_AUTH_AUDIENCE": ("auth", "audience"),
    "CONTACTPOINT_AUTH_JWKS_URL": ("auth", "jwks_url"),
}


def environment_overrides(environ: dict[str, str] | None = None) -> dict[str, Any]:
    """The configuration fragments given by environment variables (see `ENVIRONMENT`)."""
    source = os.environ if environ is None else environ
    tree: dict[str, Any] = {}
    for variable, path in ENVIRONMENT.items():
        if value := source.get(variable):
            node = tree
            for key in path[:-1]:
                node = node.setdefault(key, {})
            node[path[-1]] = value
    return tree


def _merge(base: dict[str, Any], extra: dict[str, Any]) -> dict[str, Any]:
    merged = dict(base)
    for key, value in extra.items():
        if isinstance(value, dict) and isinstance(merged.get(key), dict):
            merged[key] = _merge(merged[key], value)
        else:
            merged[key] = value
    return merged


def _one_line(exc: ValidationError) -> str:
    problems = []
    for error in exc.errors():
        where = ".".join(str(part) for part in error["loc"]) or "(top level)"
        problems.append(f"{where}: {error['msg']}")
    return "; ".join(problems)


def build_settings(data: dict[str, Any]) -> Settings:
    """Validate a configuration tree; raises `ConfigError` with a one-line reason."""
    try:
        return Settings.model_validate(data)
    except ValidationError as exc:
        raise ConfigError(f"invalid configuration: {_one_line(exc)}") from None


def check_production(settings: Settings) -> Settings:
    """`settings` if fit to serve; raises `ConfigError` with the one-line reason otherwise."""
    problem = production_problem(settings)
    if problem is not None:
        raise ConfigError(f"unsafe configuration: {problem}")
    return settings


def load_settings(path: Path | None = None, environ: dict[str, str] | None = None) -> Settings:
    """Settings from the TOML file at `path` (or `$CONTACTPOINT_CONFIG`) plus the environment."""
    source = os.environ if environ is None else environ
    if path is None and source.get("CONTACTPOINT_CONFIG"):
        path = Path(source["CONTACTPOINT_CONFIG"])
    data: dict[str, Any] = {}
    if path is not None:
        try:
            data = tomllib.loads(path.read_text(encoding="utf-8"))
        except OSError as exc:
            raise ConfigError(f"cannot read configuration file {path}: {exc.strerror}") from None
        except tomllib.TOMLDecodeError as exc:
            raise ConfigError(f"configuration file {path} is not valid TOML: {exc}") from None
    return build_settings(_merge(data, environment_overrides(dict(source))))
