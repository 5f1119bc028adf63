"""The bench's pure parsing: percentiles, a Prometheus counter, /proc RSS, wrk's summary,
py-spy stacks summed by layer."""

import json
import os
from pathlib import Path

import pytest

from bench.parse import counter_total, layer_of, layer_summary, percentile
from bench.procs import cpu_spent, cpus_busy_seconds, status_rss_kib
from bench.wrkload import lua_script, parse_done


def test_percentile_is_nearest_rank():
    ordered = [float(n) for n in range(1, 101)]
    assert percentile(ordered, 50) == 50.0
    assert percentile(ordered, 99) == 99.0
    assert percentile(ordered, 100) == 100.0
    assert percentile([7.0], 99) == 7.0
    assert percentile([], 50) == 0.0


def test_counter_total_sums_label_sets_and_skips_created():
    text = "\n".join([
        "# HELP contactpoint_redis_round_trips_total Redis round trips",
        "# TYPE contactpoint_redis_round_trips_total counter",
        'contactpoint_redis_round_trips_total{op="get"} 10.0',
        'contactpoint_redis_round_trips_total{op="set"} 5.0',
        "contactpoint_redis_round_trips_created 1.7e9",
        "contactpoint_redis_round_trips_total_other 99",
    ])
    assert counter_total(text, "contactpoint_redis_round_trips_total") == 15.0
    assert counter_total("contactpoint_redis_round_trips_total 3\n",
                         "contactpoint_redis_round_trips") == 3.0
    assert counter_total("other_total 1\n", "contactpoint_redis_round_trips_total") is None


def test_counter_total_of_one_label_keeps_only_the_samples_that_hold_it():
    text = "\n".join([
        'contactpoint_cache_lookups_total{system="gp",result="hit"} 7.0',
        'contactpoint_cache_lookups_total{system="gp",result="miss"} 2.0',
        'contactpoint_cache_lookups_total{system="school",result="miss"} 1.0',
        'contactpoint_cache_lookups_total{system="missing",result="hit"} 4.0',
        'contactpoint_cache_lookups_created{system="gp",result="miss"} 1.7e9',
    ])
    assert counter_total(text, "contactpoint_cache_lookups", 'result="miss"') == 3.0
    assert counter_total(text, "contactpoint_cache_lookups", 'result="hit"') == 11.0
    assert counter_total(text, "contactpoint_cache_lookups") == 14.0
    assert counter_total("contactpoint_cache_lookups_total 3\n", "contactpoint_cache_lookups",
                         'result="miss"') is None


def test_counter_total_reads_a_histogram_count_not_its_buckets_or_sum():
    name = "contactpoint_audit_commit_duration_seconds"
    text = "\n".join([
        f'{name}_bucket{{le="0.001",outcome="ok"}} 7.0',
        f'{name}_bucket{{le="+Inf",outcome="ok"}} 9.0',
        f'{name}_count{{outcome="ok"}} 9.0',
        f'{name}_count{{outcome="error"}} 2.0',
        f'{name}_sum{{outcome="ok"}} 0.004',
    ])
    assert counter_total(text, f"{name}_count") == 11.0


def test_status_rss_and_cpu_spent():
    assert status_rss_kib("Name:\tpython\nVmPeak:\t 9 kB\nVmRSS:\t  104448 kB\n") == 104448
    assert status_rss_kib("Name:\tkthread\n") is None
    # a worker new since the first snapshot counts from zero; one gone is not counted
    assert cpu_spent({1: 1.0, 2: 5.0}, {1: 1.5, 3: 0.25}) == pytest.approx(0.75)
    assert cpu_spent({1: 1.0}, {}) is None


def test_cpus_busy_counts_the_named_cpus_without_idle_or_iowait():
    stat = "\n".join([
        "cpu  900 0 900 9000 900 0 0 0 0 0",
        "cpu0 100 10 50 1000 300 5 5 0 0 0",
        "cpu1 400 0 100 2000 0 0 0 0 0 0",
        "intr 123",
    ])
    ticks = os.sysconf("SC_CLK_TCK")
    assert cpus_busy_seconds({0}, stat) == pytest.approx(170 / ticks)
    assert cpus_busy_seconds({0, 1}, stat) == pytest.approx(670 / ticks)


def test_layer_of_takes_the_innermost_known_frame():
    assert layer_of(["run (uvicorn/server.py:86)", "app (starlette/routing.py:62)",
                     "Lookup.child (gateway/lookup/pipeline.py:170)",
                     "ChildIdCodec.decode (gateway/crypto/ids.py:62)"]) == "auth"
    # typing / re frames pass their time up to the caller
    assert layer_of(["Query.child (resolvers/query.py:85)",
                     "_compile (re/_compiler.py:10)"]) == "GraphQL"
    assert layer_of(["loads (json/__init__.py:346)"]) == "JSON"
    assert layer_of(["loads (/usr/lib/python3.12/json/__init__.py:346)"]) == "JSON"
    assert layer_of(["Runner.run (asyncio/runners.py:118)"]) == "asyncio/event loop"
    assert layer_of(["<module> (somewhere.py:1)"]) == "other"


def test_layer_summary_leaves_out_idle_executor_threads():
    raw = [
        "Thread._bootstrap (threading.py:1002);Thread.run (threading.py:982);"
        "_worker (concurrent/futures/thread.py:81) 40",
        "Thread.run (threading.py:982);_worker (concurrent/futures/thread.py:83);"
        "_WorkItem.run (concurrent/futures/thread.py:58);"
        "_append (gateway/accountability/audit/sqlite_store.py:102) 6",
        "main (gateway/web/cli.py:185);send (redis/asyncio/connection.py:1506) 3",
        "main (gateway/web/cli.py:185);emit (logging/__init__.py:1100) 1",
        "garbage",
    ]
    layers, counted, idle = layer_summary(raw)
    assert idle == 40
    assert counted == 10
    assert layers == {"audit": 6, "Redis": 3, "telemetry/logging": 1}


def test_wrk_script_and_summary(tmp_path: Path):
    script = lua_script(ids=tmp_path / "ids.txt", proofs=None, token="t.o.k",
                        dpop=False, named={"query": 'query { a(b: "c") }'}, threads=2)
    assert 'thread:set("stride", 2)' in script
    assert "Bearer" in script
    prefix = json.dumps({"query": 'query { a(b: "c") }', "variables": {"id": ""}},
                        separators=(",", ":")).split('""}}')[0]
    assert prefix + '"' in script
    assert "table.concat(pieces, child)" in script
    assert "%%" not in script
    summary = {"requests": 1000, "duration_us": 5_000_000, "bad_responses": 3, "sent": 1001,
               "connect_errors": 0, "read_errors": 1, "write_errors": 0, "status_errors": 3,
               "timeouts": 1, "wrapped": 0, "proofs_wrapped": 0, "p50_us": 1500,
               "p95_us": 4000, "p99_us": 9000, "mean_us": 2000.5, "max_us": 20000}
    result = parse_done("Running 5s test\n  1 threads\nBENCH-ERROR 429 {\"a\": 1}\n"
                        "BENCH-JSON " + json.dumps(summary))
    assert (result.requests, result.errors, result.seconds) == (1000, 5, 5.0)
    assert result.detail["first_error"] == '429 {"a": 1}'
    assert (result.p50_ms, result.p99_ms) == (1.5, 9.0)
    with pytest.raises(RuntimeError):
        parse_done("no summary")
