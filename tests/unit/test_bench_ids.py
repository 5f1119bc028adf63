"""`bench.__main__.Ids`: each cache-hit run gets a set of children not asked for before."""

from __future__ import annotations

from bench.__main__ import Ids


def test_each_hit_run_takes_fresh_children_that_miss_runs_then_skip():
    ids = Ids(cold=list("abcdefg"), hot=["x", "y"])

    assert ids.fresh_hot() == ["a", "b"]
    assert ids.fresh_hot() == ["c", "d"]
    assert ids.take()[:2] == ["e", "f"]  # the next cache-miss run starts after them


def test_a_set_taken_across_the_end_of_the_cold_ids_wraps_and_says_so():
    ids = Ids(cold=list("abc"), hot=["x", "y"], cursor=2)

    assert ids.fresh_hot() == ["c", "a"]
    assert ids.wrapped
