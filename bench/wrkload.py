"""Closed-loop load with wrk: a Lua script the bench writes, cycling through child ids.

Each wrk thread reads the ids (and, with DPoP, the proofs made ahead) from files in
the bench's temporary folder and takes every `threads`-th one from its own offset, so
no two requests of a run name the same child (or send the same proof) until the
list is used up; then it starts again (`wrapped` in the result). A response that is
not 200, or whose body has `"errors"`, counts as an error (`response()` hook); the
`done()` hook prints one JSON line with the counts and latency percentiles (µs).
Latency is wrk's: from sending a request to its response, errors included.
"""

from __future__ import annotations

import json
import shutil
import subprocess
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from pathlib import Path

__all__ = ["MARK", "WrkResult", "body_script", "lua_script", "parse_done", "run_wrk",
           "wrk_path"]

MARK = "@@CHILD@@"
"""Where a request body takes the child (an id, or an NHS number for `bench.peer`)."""

_LUA = r"""
-- written by `python -m bench` (or `bench.peer`): one child per request, counted errors,
-- JSON summary
local ids_file, proofs_file = %(ids)s, %(proofs)s
local scheme = %(scheme)s
local token = %(token)s
local pieces = {%(pieces)s}
local threads = {}
local counter = 1

function setup(thread)
  thread:set("offset", counter)
  thread:set("stride", %(threads)d)
  counter = counter + 1
  table.insert(threads, thread)
end

local function read_lines(path)
  local lines = {}
  if path == nil then return lines end
  for line in io.lines(path) do lines[#lines + 1] = line end
  return lines
end

function init(args)
  ids = read_lines(ids_file)
  proofs = read_lines(proofs_file)
  next_id, next_proof = offset, offset
  bad, sent, wrapped, proofs_wrapped = 0, 0, 0, 0
  wrk.method = "POST"
  wrk.headers["Content-Type"] = "application/json"
  wrk.headers["Authorization"] = scheme .. " " .. token
end

function request()
  if next_id > #ids then next_id = offset; wrapped = 1 end
  local child = ids[next_id]
  next_id = next_id + stride
  sent = sent + 1
  if #proofs > 0 then
    if next_proof > #proofs then next_proof = offset; proofs_wrapped = 1 end
    wrk.headers["DPoP"] = proofs[next_proof]
    next_proof = next_proof + stride
  end
  return wrk.format(nil, nil, nil, table.concat(pieces, child))
end

function response(status, headers, body)
  if status ~= 200 or (body ~= nil and string.find(body, '"errors"', 1, true)) then
    bad = bad + 1
    if first_error == nil then
      first_error = status .. " " .. string.sub(string.gsub(body or "", "\n", " "), 1, 300)
    end
  end
end

function done(summary, latency, requests)
  local bad_total, sent_total, wrapped_any, proofs_wrapped_any = 0, 0, 0, 0
  for _, thread in ipairs(threads) do
    bad_total = bad_total + thread:get("bad")
    sent_total = sent_total + thread:get("sent")
    wrapped_any = math.max(wrapped_any, thread:get("wrapped"))
    proofs_wrapped_any = math.max(proofs_wrapped_any, thread:get("proofs_wrapped"))
    local first = thread:get("first_error")
    if first ~= nil then io.write("\nBENCH-ERROR " .. first .. "\n") end
  end
  local e = summary.errors
  io.write(string.format(
    '\nBENCH-JSON {"requests": %%d, "duration_us": %%d, "bad_responses": %%d, "sent": %%d, ' ..
    '"connect_errors": %%d, "read_errors": %%d, "write_errors": %%d, "status_errors": %%d, ' ..
    '"timeouts": %%d, "wrapped": %%d, "proofs_wrapped": %%d, "p50_us": %%d, "p95_us": %%d, ' ..
    '"p99_us": %%d, "mean_us": %%.1f, "max_us": %%d}\n',
    summary.requests, summary.duration, bad_total, sent_total, e.connect, e.read, e.write,
    e.status, e.timeout, wrapped_any, proofs_wrapped_any, latency:percentile(50),
    latency:percentile(95), latency:percentile(99), latency.mean, latency.max))
end
"""


def wrk_path() -> str | None:
    """`/usr/bin/wrk`, or `wrk` on the PATH, or None."""
    return shutil.which("wrk") or shutil.which("/usr/bin/wrk")


def _lua_string(text: str | None) -> str:
    if text is None:
        return "nil"
    return "[==[" + text + "]==]" if "]==]" not in text else json.dumps(text)


def lua_script(*, ids: Path, proofs: Path | None, token: str, dpop: bool,
               named: dict[str, str], threads: int) -> str:
    """The Lua script for one run: POST `named` (query or documentId) with `variables.id`."""
    body = json.dumps({**named, "variables": {"id": MARK}}, separators=(",", ":"))
    return body_script(ids=ids, proofs=proofs, token=token, dpop=dpop, body=body,
                       threads=threads)


def body_script(*, ids: Path, proofs: Path | None, token: str, dpop: bool, body: str,
                threads: int) -> str:
    """The Lua script for one run: POST `body` with each child of `ids` where it has `MARK`
    (as often as it has it)."""
    pieces = ", ".join(_lua_string(piece) for piece in body.split(MARK))
    return _LUA % {"ids": _lua_string(str(ids)),
                   "proofs": _lua_string(None if proofs is None else str(proofs)),
                   "scheme": _lua_string("DPoP" if dpop else "Bearer"),
                   "token": _lua_string(token), "pieces": pieces, "threads": threads}


@dataclass
class WrkResult:
    requests: int
    errors: int
    seconds: float
    p50_ms: float
    p95_ms: float
    p99_ms: float
    mean_ms: float
    detail: dict[str, Any]


def parse_done(stdout: str) -> WrkResult:
    """The result from the `BENCH-JSON` line the script's `done()` prints."""
    for line in stdout.splitlines():
        if line.startswith("BENCH-JSON "):
            data: dict[str, Any] = json.loads(line.removeprefix("BENCH-JSON "))
            break
    else:
        raise RuntimeError(f"wrk printed no summary:\n{stdout[-2000:]}")
    errors = [line.removeprefix("BENCH-ERROR ") for line in stdout.splitlines()
              if line.startswith("BENCH-ERROR ")]
    if errors:
        data["first_error"] = errors[0]
    socket_errors = sum(data[k] for k in ("connect_errors", "read_errors", "write_errors",
                                          "timeouts"))
    return WrkResult(
        requests=data["requests"], errors=data["bad_responses"] + socket_errors,
        seconds=data["duration_us"] / 1e6, p50_ms=data["p50_us"] / 1000,
        p95_ms=data["p95_us"] / 1000, p99_ms=data["p99_us"] / 1000,
        mean_ms=data["mean_us"] / 1000, detail=data)


def run_wrk(wrk: str, url: str, script: Path, *, connections: int, threads: int,
            seconds: float) -> WrkResult:
    """Run wrk for `seconds` (whole seconds, at least 1) and parse its summary."""
    threads = max(1, min(threads, connections))
    command = [wrk, "-t", str(threads), "-c", str(connections),
               "-d", f"{max(1, round(seconds))}s", "--timeout", "10s", "-s", str(script),
               url + "/graphql"]
    done = subprocess.run(command, capture_output=True, text=True, check=False)
    if done.returncode != 0:
        raise RuntimeError(f"wrk failed ({done.returncode}): {done.stderr[-2000:]}")
    return parse_done(done.stdout)
