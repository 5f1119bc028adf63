"""Playing one generated case against the running gateway, and judging the answers.

For each case the gateway's cached answers (`{prefix}s:...` in Redis) are
dropped, then the request is sent on that cold cache and again on the warm
one. Each time:

- `data` equals the reference's (`tests.property.reference`) and so do the
  errors as (path, code) pairs; `fromCache` is false cold, and warm true
  exactly for a child that may be cached (not shielded, servable);
- every value the reference withholds (of any fixture child: every value a
  full-access fetch returns, plus everything the systems hold) is absent from
  the response text, matched as a whole word;
- no personal value of any fixture child is in the log records captured
  during the request (every logger, DEBUG), nor readable in any Redis key or
  value under the gateway's prefix (cache entries, budget and rate counters).

Then the two bodies must be the same (`fromCache` and error order aside).
A refused document (over the alias or token limit) must be QUERY_TOO_COMPLEX
with no `data` and must fetch nothing.

Values the caller itself sent (a search's name or postcode) are not counted as
withheld; nor are the small vocabularies every child shares (genders, carer
relationships), which the `data` comparison covers.
"""

from __future__ import annotations

import datetime as dt
import itertools
import json
import logging
import re
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any
from zoneinfo import ZoneInfo

from hypothesis import currently_in_test_context, event

from gateway.accountability.audit import AuditEvent, child_pseudonym
from tests.property.documents import (
    FIXTURES,
    Document,
    EnumValue,
    IdOf,
    Root,
    SearchOf,
    full_selection,
    render,
    too_complex,
)
from tests.property.reference import (
    ALL_SCOPES,
    Expected,
    FromCache,
    Logged,
    ReportEntry,
    World,
    check_data,
    check_errors,
    expect,
    leaf_strings,
    personal_strings,
    report_entries,
    report_withheld,
)

if TYPE_CHECKING:
    import pytest

    from connectors.simulators.records import Child as Record

LONDON = ZoneInfo("Europe/London")
GENDERS = frozenset({"male", "female", "other", "unknown"})
NOT_PERSONAL = frozenset({"ok", "unavailable", "gp", "school", "council"})


@dataclass(frozen=True)
class Case:
    """One generated request: a document and the scopes of the caller's token."""

    document: Document
    scopes: tuple[str, ...]

    def _repr_pretty_(self, printer: Any, cycle: bool) -> None:
        """How hypothesis prints a falsifying case: short (the failure message has it all)."""
        text = render(self.document, dict.fromkeys(FIXTURES, "<id>"),
                      {s: {"<search>": s.fixture} for s in _searches(self.document)}).text
        if len(text) > 2000:
            text = text[:2000] + f"... ({len(text)} characters)"
        printer.text(f"Case(scopes={self.scopes!r}, query={text!r}, "
                     f"values={dict(self.document.values)!r})")


def _searches(document: Document) -> set[SearchOf]:
    values = [*(v for _, v in document.values), *(v for r in document.roots
                                                   for _, v in r.arguments)]
    return {v for v in values if isinstance(v, SearchOf)}


def london_today() -> dt.date:
    return dt.datetime.now(LONDON).date()


@dataclass
class _Memo:
    gateway: Any
    world: World
    full: dict[str, set[str]]


# Per running gateway (kept here, not on the gateway: hypothesis prints the
# gateway argument of a falsifying example, and the population is large).
_MEMOS: dict[int, _Memo] = {}


def _memo(gateway: Any) -> _Memo:
    memo = _MEMOS.get(id(gateway))
    if memo is None or memo.gateway is not gateway:
        population = gateway.sims.population
        records = {f: population.child(gateway.fixtures[f]) for f in FIXTURES}
        world = World(records, list(population.children), gateway.id_for, london_today())
        _MEMOS.clear()  # one gateway at a time: drop the previous test's
        memo = _MEMOS[id(gateway)] = _Memo(gateway, world, {})
    return memo


def world_of(gateway: Any) -> World:
    """The reference's view of the system the gateway talks to (memoised per gateway)."""
    return _memo(gateway).world


def search_input(search: SearchOf, record: Record) -> dict[str, str]:
    """The concrete `ChildSearch` input for a drawn search over a fixture child."""
    if search.form == "nhs":
        nhs = record.nhs_number
        return {"nhsNumber": nhs if search.nhs_style == "plain"
                else f"{nhs[:3]} {nhs[3:6]} {nhs[6:]}"}
    family = {"as_is": record.family, "upper": record.family.upper(),
              "lower": record.family.lower(), "padded": f"  {record.family} "}[search.name_style]
    fields = {"familyName": family, "dateOfBirth": record.date_of_birth.isoformat()}
    if search.form in {"given", "both"}:
        fields["givenName"] = ("Zyxwvut" if search.wrong_given
                               else record.given[search.given_index % len(record.given)])
    if search.form in {"postcode", "both"}:
        postcode = record.home.postcode
        fields["postcode"] = {"as_is": postcode, "lower": postcode.lower(),
                              "no_space": postcode.replace(" ", "")}[search.postcode_style]
    return fields


def full_access_document(fixture: str) -> Document:
    return Document((Root("child", (("id", IdOf(fixture)), ("purpose", EnumValue("SAFEGUARDING")),
                                    ("caseReference", "CASE-1")),
                          full_selection("Child")),))


_NOT_PERSONAL = frozenset({"id", "sources", "source", "provenance"})


def _personal(value: Any) -> Any:
    """A response value without the keys that hold no personal data (ids, system names)."""
    if isinstance(value, dict):
        return {k: _personal(v) for k, v in value.items() if k not in _NOT_PERSONAL}
    if isinstance(value, list):
        return [_personal(v) for v in value]
    return value


async def full_access_strings(gateway: Any, fixture: str) -> set[str]:
    """Every value of a fixture child, from a full-access fetch (all scopes, SAFEGUARDING,
    a case reference), which must itself equal the reference; memoised per gateway."""
    memo = _memo(gateway).full
    if fixture not in memo:
        world = world_of(gateway)
        document = full_access_document(fixture)
        ids = {f: gateway.id_for(r.nhs_number) for f, r in world.records.items()}
        rendered = render(document, ids)
        response = await gateway.post({"query": rendered.text, "variables": rendered.variables},
                                      token=gateway.token(" ".join(ALL_SCOPES)))
        body = response.json()
        expected = expect(world, document, frozenset(ALL_SCOPES))
        check_data(body["data"], expected.data, warm=False)
        check_errors(body.get("errors", []), expected)
        child = body["data"]["child"] or {}
        values = leaf_strings(_personal(child))
        memo[fixture] = values | personal_strings(world.records[fixture])
    return memo[fixture]


# ------------------------------------------------------------------ leak checks


def _pattern(value: str) -> re.Pattern[str]:
    return re.compile(rf"(?<![A-Za-z0-9]){re.escape(value)}(?![A-Za-z0-9])")


def assert_absent(where: str, text: str, values: set[str]) -> None:
    found = sorted(v for v in values if _pattern(v).search(text))
    assert not found, f"withheld values in {where}: {found}\n{text[:3000]}"


async def redis_dump(redis: Any, prefix: str) -> list[bytes]:
    """Every key under the gateway's prefix and every value, whatever its Redis type."""
    keys = sorted(await redis.keys(prefix + "*"))
    async with redis.pipeline(transaction=False) as pipe:
        for key in keys:
            pipe.type(key)
        kinds = [k.decode() if isinstance(k, bytes) else k for k in await pipe.execute()]
    async with redis.pipeline(transaction=False) as pipe:
        for key, kind in zip(keys, kinds, strict=True):
            if kind == "string":
                pipe.get(key)
            elif kind == "set":
                pipe.smembers(key)
            elif kind == "hash":
                pipe.hgetall(key)
            elif kind in {"list", "zset"}:
                (pipe.lrange if kind == "list" else pipe.zrange)(key, 0, -1)
            else:
                pipe.exists(key)  # a type this check does not read
        values = await pipe.execute()
    found: list[bytes] = list(keys)
    for value in values:
        if isinstance(value, bytes):
            found.append(value)
        elif isinstance(value, dict):
            found.extend([*value.keys(), *value.values()])
        elif isinstance(value, list | set):
            found.extend(value)
    return found


async def flush_cache(redis: Any, prefix: str) -> None:
    """Drop the gateway's cached answers (`{prefix}s:...`), not its budget counters."""
    keys = await redis.keys(prefix + "s:*")
    if keys:
        await redis.delete(*keys)


def _without_from_cache(actual: Any, expected: Any) -> Any:
    """`actual` with every `fromCache` value (per the reference's markers) blanked."""
    if isinstance(expected, FromCache):
        return "<fromCache>"
    if isinstance(expected, dict) and isinstance(actual, dict):
        return {k: _without_from_cache(v, expected.get(k)) for k, v in actual.items()}
    if isinstance(expected, list) and isinstance(actual, list):
        return [_without_from_cache(a, e) for a, e in zip(actual, expected, strict=False)]
    return actual


def _comparable(body: dict[str, Any], expected_data: Any) -> dict[str, Any]:
    errors = sorted(json.dumps(e, sort_keys=True) for e in body.get("errors", []))
    data = _without_from_cache(body.get("data"), expected_data)
    return {"has_data": "data" in body, "data": data, "errors": errors}


def _describe(expected: Expected | None, world: World, released: set[str]) -> None:
    """Label the example for `--hypothesis-show-statistics` (what the run covered)."""
    if not currently_in_test_context():
        return
    if expected is None:
        event("refused: too complex")
        return
    for code in sorted({e.code for e in expected.errors}):
        event(f"error {code}")
    if expected.propagated:
        event("non-null field nulled its parent")
    if not expected.errors:
        event("no errors")
    sensitive = {s.name for r in world.records.values() if r.council
                 for s in r.council.involvements if s.sensitive}
    if released & sensitive:
        event("a sensitive service released")
    if released & {r.home.postcode for r in world.records.values() if r.council
                   and r.council.shielded}:
        event("a shielded child's address released")


def _judge(response: Any, expected: Expected | None, *, warm: bool,
           refused_fetched: bool) -> None:
    assert response.status_code == 200, response.text
    body = response.json()
    if expected is None:
        assert "data" not in body, "a refused document has no data"
        assert body["errors"]
        assert {e["extensions"]["code"] for e in body["errors"]} == {"QUERY_TOO_COMPLEX"}
        assert not refused_fetched, "a refused document made the gateway ask the systems"
        return
    check_data(body.get("data"), expected.data, warm=warm)
    check_errors(body.get("errors", []), expected)


def _hits(gateway: Any) -> int:
    return sum(sum(getattr(gateway.sims, n).hits.values()) for n in gateway.sims.urls())


async def run_case(gateway: Any, redis: Any, caplog: pytest.LogCaptureFixture, case: Case
                   ) -> dict[str, Any]:
    """Play `case` cold then warm; assert everything; return the cold body (for reports)."""
    world = world_of(gateway)
    document = case.document
    personal: set[str] = set()  # every fixture child's, involved or not
    for fixture in FIXTURES:
        personal |= await full_access_strings(gateway, fixture)
    searches = {s: search_input(s, world.records[s.fixture]) for s in _searches(document)}
    sent: set[str] = set()
    for search in searches.values():
        sent |= {*search.values(), *(v.strip() for v in search.values())}
    for search in searches.values():  # everyone a demographic search could find
        for record in world.population:
            if record.family.casefold() == search.get("familyName", "").strip().casefold():
                personal |= personal_strings(record)
    ids = {f: gateway.id_for(r.nhs_number) for f, r in world.records.items()}
    rendered = render(document, ids, searches)
    refused = too_complex(document, rendered.text)
    expected = None if refused else expect(world, document, frozenset(case.scopes), searches)
    released = set() if expected is None else leaf_strings(expected.data)
    relationships = {c.relationship for r in world.records.values() for c in r.carers}
    personal -= GENDERS | NOT_PERSONAL | relationships
    withheld = {v for v in personal - released - sent
                if len(v) >= 3 and not any(v in r for r in released)}
    _describe(expected, world, released)
    token = gateway.token(" ".join(case.scopes))
    prefix = gateway.settings.cache.key_prefix
    await flush_cache(redis, prefix)
    context = (f"\nscopes: {' '.join(case.scopes)!r}\nquery: {rendered.text}\n"
               f"variables: {json.dumps(rendered.variables)}")
    bodies = []
    for warm in (False, True):
        phase = "warm" if warm else "cold"
        caplog.clear()
        hits = _hits(gateway)
        response = await gateway.post({"query": rendered.text, "variables": rendered.variables},
                                      token=token)
        logs = caplog.text + "\n".join(r.getMessage() for r in caplog.records)
        stored = b"\n".join(await redis_dump(redis, prefix))
        try:
            _judge(response, expected, warm=warm, refused_fetched=_hits(gateway) != hits)
            assert_absent("the response", response.text, withheld)
            assert_absent("the logs of the request", logs,
                          {v for v in personal - sent if len(v) >= 3})
            in_cache = sorted(v for v in personal - sent
                              if len(v) >= 6 and v.encode() in stored)
            assert not in_cache, f"readable in Redis: {in_cache}"
        except AssertionError as exc:
            warnings = "\n".join(f"{r.levelname} {r.name}: {r.getMessage()}"
                                 for r in caplog.records if r.levelno >= logging.WARNING)
            raise AssertionError(f"{phase} cache: {exc}{context}\nresponse: {response.text}"
                                 f"\ngateway warnings: {warnings or '-'}") from None
        bodies.append(response.json())
    expected_data = None if expected is None else expected.data
    assert _comparable(bodies[0], expected_data) == _comparable(bodies[1], expected_data), (
        f"cold and warm answers differ: {bodies}{context}")
    return bodies[0]


# ------------------------------------------------------------------ accessReport

REPORT_SHOWN = "at organisation purpose fields"
REPORT_MARKS = "withheldFromSubject withheldReason"
_NHS_SERIAL = itertools.count()


def fresh_nhs_number() -> str:
    """A valid test-range NHS number no earlier example (or replay while shrinking) used."""
    while True:
        digits = f"9998{next(_NHS_SERIAL) % 100_000:05d}"
        check = 11 - sum(int(d) * (10 - i) for i, d in enumerate(digits)) % 11
        if check != 10:
            return digits + str(0 if check == 11 else check)


@dataclass(frozen=True)
class ReportCase:
    """A child's generated audit log (oldest first, ages in days) and the report asked for."""

    log: tuple[tuple[float, str, str, str | None, str | None, tuple[str, ...]], ...]
    limit: int
    subject_asks_marks: bool


async def _write_log(gateway: Any, nhs: str, log: list[Logged]) -> None:
    secret = gateway.settings.audit.pseudonym_secret.get_secret_value()
    await gateway.runtime.accountability.audit.record([AuditEvent(
        at=e.at, request_id=f"r{i}", action=e.action, outcome=e.outcome, subject="user-1",
        organisation=e.organisation, client_id="client-a", purpose=e.purpose,
        case_reference="CS/1", child=child_pseudonym(secret, nhs), released=e.released)
        for i, e in enumerate(log)])


async def _report(gateway: Any, nhs: str, selection: str, token: str) -> dict[str, Any]:
    response = await gateway.post({"query": "query($n: String!) { accessReport(nhsNumber: $n) "
                                            f"{{ {selection} }} }}", "variables": {"n": nhs}},
                                  token=token)
    assert response.status_code == 200, response.text
    body: dict[str, Any] = response.json()
    return body


def _as_reference(records: list[dict[str, Any]], *, marks: bool) -> list[ReportEntry | dict]:
    return [ReportEntry(dt.datetime.fromisoformat(r["at"]), r["organisation"], r["purpose"],
                        r["fields"], r["withheldReason"]) if marks else
            {**r, "at": dt.datetime.fromisoformat(r["at"])} for r in records]


async def run_report_case(gateway: Any, case: ReportCase) -> None:
    """Write the log for two children, the second without what the subject may not see;
    the subject's reports of both must be identical and equal the reference, and the
    officer's report of the first complete, with the right marks."""
    now = dt.datetime.now(dt.UTC)
    log = [Logged(now - dt.timedelta(days=age), *rest) for age, *rest in case.log]
    twin_log = [e for e in log if report_withheld(e, now) is None or e.outcome != "released"
                or not e.released or e.action == "access_report.read"]
    child, twin = fresh_nhs_number(), fresh_nhs_number()
    await _write_log(gateway, child, log)
    await _write_log(gateway, twin, twin_log)
    selection = REPORT_SHOWN + (f" {REPORT_MARKS}" if case.subject_asks_marks else "")
    bodies = [await _report(gateway, nhs, selection,
                            gateway.token("subject.self", subject_nhs_number=nhs))
              for nhs in (child, twin)]
    assert bodies[0] == bodies[1], f"the subject can tell withheld releases exist: {bodies}"
    expected = report_entries(log, subject=True, now=now, limit=case.limit)
    records = bodies[0]["data"]["accessReport"]
    shown = [{k: r[k] for k in REPORT_SHOWN.split()} for r in records]
    assert _as_reference(shown, marks=False) == [
        {"at": e.at, "organisation": e.organisation, "purpose": e.purpose, "fields": e.fields}
        for e in expected]
    errors = sorted((tuple(e["path"]), e["extensions"]["code"])
                    for e in bodies[0].get("errors", []))
    marks = REPORT_MARKS.split() if case.subject_asks_marks else []
    assert errors == sorted((("accessReport", i, m), "FORBIDDEN")
                            for i in range(len(expected)) for m in marks)
    assert all(r.get(m, None) is None for r in records for m in marks)
    officer = await _report(gateway, child, f"{REPORT_SHOWN} {REPORT_MARKS}",
                            gateway.token("audit.read"))
    assert "errors" not in officer, officer
    complete = report_entries(log, subject=False, now=now, limit=case.limit)
    entries = officer["data"]["accessReport"]
    assert _as_reference(entries, marks=True) == complete
    assert [r["withheldFromSubject"] for r in entries] == [e.withheld is not None
                                                           for e in complete]
