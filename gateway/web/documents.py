"""Which GraphQL documents run: trusted documents from a manifest, and Apollo's APQ.

A request names its document in one of three ways: `query` (the text),
`documentId` (`"sha256:<hex>"`, from the trusted documents manifest), or
Apollo's automatic persisted queries (`extensions.persistedQuery.sha256Hash`,
with or without the text). `Documents.resolve` turns any of them into the
text to execute, or raises a coded `BadUserInputError`.

The manifest is read, hash-checked, parsed and validated once, at start-up: a
manifest that would fail a request later stops the gateway now, with one line.
"""

from __future__ import annotations

import hashlib
import json
import re
from collections import OrderedDict
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from graphql import GraphQLError, OperationDefinitionNode, parse
from strawberry.extensions import AddValidationRules
from strawberry.schema.schema import validate_document
from strawberry.types import ExecutionContext

from gateway.core.errors import BadUserInputError
from gateway.core.records import fast_init
from gateway.settings import ConfigError
from resolvers.schema import build_schema

if TYPE_CHECKING:
    from collections.abc import Iterable, Iterator

    import strawberry
    from graphql.validation import ASTValidationRule

    from gateway.settings import Settings

__all__ = [
    "DocumentNotTrustedError",
    "DocumentRequest",
    "Documents",
    "PersistedQueries",
    "PersistedQueryNotFoundError",
    "PersistedQueryNotSupportedError",
    "TrustedDocument",
    "TrustedDocuments",
    "check_documents",
    "document_request",
    "load_documents",
    "read_manifest",
    "sha256_hex",
]

_HEX = re.compile(r"[0-9a-f]{64}")
_APOLLO_FORMAT = "apollo-persisted-query-manifest"


class PersistedQueryNotFoundError(BadUserInputError):
    """A hash names no document this gateway knows: send the text with it (APQ).

    HTTP 200 and the message `PersistedQueryNotFound`, as Apollo's clients
    expect before they retry with the text.
    """

    code = "PERSISTED_QUERY_NOT_FOUND"
    http_status = 200

    def __init__(self, message: str = "PersistedQueryNotFound") -> None:
        super().__init__(message)


class PersistedQueryNotSupportedError(BadUserInputError):
    """APQ is off and the hash is not a trusted document: Apollo's clients then send text."""

    code = "PERSISTED_QUERY_NOT_SUPPORTED"
    http_status = 200

    def __init__(self) -> None:
        super().__init__("PersistedQueryNotSupported")


class DocumentNotTrustedError(BadUserInputError):
    """Only trusted documents run here, and this one is not in the manifest."""

    code = "DOCUMENT_NOT_TRUSTED"

    def __init__(self) -> None:
        super().__init__("Only trusted documents are accepted; send a documentId from the "
                         "manifest.")


def sha256_hex(text: str) -> str:
    """The SHA-256 of a document's UTF-8 text, in lower-case hex (its id)."""
    return hashlib.sha256(text.encode()).hexdigest()


@dataclass(frozen=True, slots=True)
class TrustedDocument:
    """A manifest entry that parsed and validated at start-up.

    Only the text is kept: strawberry's `Schema.execute` takes text, and its
    parser cache finds this very string object in about 0.5 µs (its hash is
    cached), against some 350 µs to parse the bench's query. A parsed
    document could not be handed to `execute` without replacing the schema's
    `ParserCache`, to save nothing measurable.
    """

    id: str
    """SHA-256 of `text`, lower-case hex."""
    text: str


class TrustedDocuments:
    """The manifest's documents, by id and by exact text."""

    def __init__(self, documents: Iterable[TrustedDocument] = ()) -> None:
        self.by_id = {d.id: d for d in documents}
        self.by_text = {d.text: d for d in self.by_id.values()}

    def __len__(self) -> int:
        return len(self.by_id)


class _ManifestError(Exception):
    """One entry, or the whole manifest, is unsound; the message names it."""


def _entries(data: object) -> Iterator[tuple[str, object]]:
    """(id, text) pairs of either manifest format, before any check of the values."""
    if isinstance(data, dict) and data.get("format") == _APOLLO_FORMAT:
        if data.get("version") != 1 or not isinstance(data.get("operations"), list):
            raise _ManifestError("an Apollo manifest needs version 1 and a list of operations")
        for index, operation in enumerate(data["operations"]):
            if not isinstance(operation, dict) or not isinstance(operation.get("id"), str):
                raise _ManifestError(f"operations[{index}] has no string id")
            yield operation["id"], operation.get("body")
    elif isinstance(data, dict):  # GraphQL Code Generator's persisted-documents.json
        yield from data.items()
    else:
        raise _ManifestError("expected a JSON object: {hash: document}, or Apollo's manifest")


def _entry(key: str, text: object) -> tuple[str, str]:
    """The entry's hash (lower-case) and text, once the hash is known to be the text's SHA-256."""
    digest = key.lower().removeprefix("sha256:")
    if re.fullmatch(r"[0-9a-f]{40}", digest):  # GraphQL Code Generator's default
        raise _ManifestError(f"{key!r} is a SHA-1 hash; generate SHA-256 ids (GraphQL Code "
                             "Generator: persistedDocuments: {hashAlgorithm: 'sha256'})")
    if not _HEX.fullmatch(digest):
        raise _ManifestError(f"{key!r} is not a SHA-256 hash (64 hex digits)")
    if not isinstance(text, str):
        raise _ManifestError(f"{key!r}: the document is not a string")
    if sha256_hex(text) != digest:
        raise _ManifestError(f"{key!r} is not the SHA-256 of its document")
    return digest, text


def read_manifest(path: str) -> dict[str, str]:
    """The manifest's documents by lower-case SHA-256 hex, each hash checked against its text.

    Accepts GraphQL Code Generator's `persisted-documents.json` (`{"<hash>":
    "<document>"}`) and Apollo's persisted query manifest. Raises `ConfigError`
    (one line, naming the file and the entry) on anything else.
    """
    try:
        data = json.loads(Path(path).read_text(encoding="utf-8"))
    except OSError as exc:
        raise ConfigError(f"[documents] manifest {path}: cannot be read "
                          f"({exc.strerror or type(exc).__name__})") from None
    except ValueError as exc:  # not UTF-8 or not JSON
        raise ConfigError(f"[documents] manifest {path}: not JSON ({exc})") from None
    try:
        return dict(_entry(key, text) for key, text in _entries(data))
    except _ManifestError as exc:
        raise ConfigError(f"[documents] manifest {path}: {exc}") from None


def _validation_rules(schema: strawberry.Schema) -> tuple[type[ASTValidationRule], ...]:
    """The rules the schema validates every request with: graphql-core's and its extensions'."""
    rules = ExecutionContext(query=None, schema=schema, allowed_operations=()).validation_rules
    for extension in schema.get_extensions():
        if isinstance(extension, AddValidationRules):
            rules += tuple(extension.validation_rules)
    return rules


def _one_line(error: GraphQLError) -> str:
    return " ".join(error.message.split())


def _checked(digest: str, text: str, schema: strawberry.Schema,
             rules: tuple[type[ASTValidationRule], ...], max_tokens: int) -> TrustedDocument:
    """The document parsed and validated as a request would be; _ManifestError if not."""
    try:
        document = parse(text, max_tokens=max_tokens)
    except GraphQLError as exc:
        raise _ManifestError(f"{digest[:12]}…: {_one_line(exc)}") from None
    if not any(isinstance(d, OperationDefinitionNode) for d in document.definitions):
        raise _ManifestError(f"{digest[:12]}…: the document holds no operation")
    errors = validate_document(schema._schema, document, rules)
    if errors:
        raise _ManifestError(f"{digest[:12]}…: {_one_line(errors[0])}")
    return TrustedDocument(digest, text)


def trusted_documents(path: str, schema: strawberry.Schema, max_tokens: int) -> TrustedDocuments:
    """The manifest at `path`, every document checked; `ConfigError` at the first failure."""
    rules = _validation_rules(schema)
    try:
        return TrustedDocuments(_checked(digest, text, schema, rules, max_tokens)
                                for digest, text in read_manifest(path).items())
    except _ManifestError as exc:
        raise ConfigError(f"[documents] manifest {path}: document {exc}") from None


class PersistedQueries:
    """Apollo's automatic persisted queries: hash to text, least recently used first out.

    In-process and bounded: a gateway process that restarts, or another
    process, answers PERSISTED_QUERY_NOT_FOUND once and the client resends.
    """

    def __init__(self, max_entries: int) -> None:
        self._max = max_entries
        self._texts: OrderedDict[str, str] = OrderedDict()

    def get(self, digest: str) -> str | None:
        text = self._texts.get(digest)
        if text is not None:
            self._texts.move_to_end(digest)
        return text

    def put(self, digest: str, text: str) -> None:
        self._texts[digest] = text
        self._texts.move_to_end(digest)
        while len(self._texts) > self._max:
            self._texts.popitem(last=False)


@fast_init
@dataclass(frozen=True, slots=True)
class DocumentRequest:
    """How a request names its document; exactly one of `query` and `document_id`, or a hash."""

    query: str | None = None
    document_id: str | None = None
    apq_hash: str | None = None


def _hash_of(value: object, name: str) -> str:
    if isinstance(value, str):
        digest = value.lower().removeprefix("sha256:")
        if _HEX.fullmatch(digest):
            return digest
    raise BadUserInputError(f"`{name}` must be a SHA-256 hash: \"sha256:\" and 64 hex digits.")


def document_request(payload: dict[str, Any]) -> DocumentRequest:
    """The document a request body names, its shape checked (BadUserInputError otherwise).

    `extensions` must already be known to be an object or absent.
    """
    query, document_id = payload.get("query"), payload.get("documentId")
    persisted = (payload.get("extensions") or {}).get("persistedQuery")
    if query is not None and (not isinstance(query, str) or not query.strip()):
        raise BadUserInputError("`query` must be a non-empty string.")
    if document_id is not None:
        if query is not None or persisted is not None:
            raise BadUserInputError("Send `documentId` alone, without `query` or "
                                    "`extensions.persistedQuery`.")
        return DocumentRequest(document_id=_hash_of(document_id, "documentId"))
    if persisted is not None:
        if not isinstance(persisted, dict) or persisted.get("version") != 1:
            raise BadUserInputError("`extensions.persistedQuery` must be an object with "
                                    "version 1.")
        return DocumentRequest(query, apq_hash=_hash_of(persisted.get("sha256Hash"),
                                                        "extensions.persistedQuery.sha256Hash"))
    if query is None:
        raise BadUserInputError("`query` must be a non-empty string.")
    return DocumentRequest(query)


class Documents:
    """The documents this gateway runs: trusted ones always, others unless `trusted_only`."""

    def __init__(self, trusted: TrustedDocuments, apq: PersistedQueries | None, *,
                 trusted_only: bool) -> None:
        self.trusted = trusted
        self.apq = apq
        self.trusted_only = trusted_only

    def resolve(self, request: DocumentRequest) -> str:
        """The text to execute; a coded `BadUserInputError` when there is none to run.

        A trusted document's text is the manifest's own string, so that the
        parser cache finds it without hashing the text again.
        """
        if request.document_id is not None:
            found = self.trusted.by_id.get(request.document_id)
            if found is None:
                raise PersistedQueryNotFoundError(
                    "No trusted document has this documentId; is the manifest up to date?")
            return found.text
        if request.apq_hash is not None:
            return self._persisted(request.apq_hash, request.query)
        assert request.query is not None  # noqa: S101 -- document_request guarantees one
        return self._allowed(request.query)

    def _allowed(self, query: str) -> str:
        trusted = self.trusted.by_text.get(query)
        if trusted is not None:
            return trusted.text
        if self.trusted_only:
            raise DocumentNotTrustedError
        return query

    def _persisted(self, digest: str, query: str | None) -> str:
        if query is None:
            found = self.trusted.by_id.get(digest)
            if found is not None:
                return found.text
            if self.apq is None:
                raise PersistedQueryNotSupportedError
            text = self.apq.get(digest)
            if text is None:
                raise PersistedQueryNotFoundError
            return text
        if sha256_hex(query) != digest:
            raise BadUserInputError("provided sha does not match query")
        query = self._allowed(query)
        if self.apq is not None and digest not in self.trusted.by_id:
            self.apq.put(digest, query)
        return query


def load_documents(settings: Settings, schema: strawberry.Schema) -> Documents:
    """The configured documents policy, the manifest loaded; `ConfigError` if it is not sound."""
    config, development = settings.documents, settings.development
    trusted = (TrustedDocuments() if config.manifest is None
               else trusted_documents(config.manifest, schema, settings.limits.max_tokens))
    apq = PersistedQueries(config.apq_max_entries) if config.apq(development) else None
    return Documents(trusted, apq, trusted_only=config.refuses_others(development))


def check_documents(settings: Settings) -> Documents:
    """`load_documents` against a schema built here: for commands that check before starting."""
    return load_documents(settings, build_schema(settings.limits, development=settings.development))
