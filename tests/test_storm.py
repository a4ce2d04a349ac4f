"""Alert storms: the gathering protocol, run by real threads that share one store as workers share Variables.

Each thread plays one mapped task instance whose failure callback runs at the same moment as its
siblings'. What is checked is what users rely on: one summary per window, every failed instance
in exactly one summary, and no instance left out when a leader dies.
"""

from __future__ import annotations

import threading
import time
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import pytest

from airflow_alerter.storm import (
    ABANDONED_AFTER,
    SiblingStates,
    StormMember,
    StormWindow,
    compact_ranges,
    summary_lines,
)

GROUP = "airflow_alerter.storm.etl.run1.ops_email.failure"


class SharedStore:
    """The Variables table as the workers see it: each get/set/delete is atomic, nothing more."""

    def __init__(self) -> None:
        self.values: dict[str, str] = {}
        self._lock = threading.Lock()

    def get(self, key: str) -> str | None:
        with self._lock:
            return self.values.get(key)

    def set(self, key: str, value: str) -> None:
        with self._lock:
            self.values[key] = value

    def delete(self, key: str) -> None:
        with self._lock:
            self.values.pop(key, None)


def all_running(count: int, task_id: str = "process") -> SiblingStates:
    """Every instance is still 'running' in the DB: that is how siblings look while their callbacks run."""
    return lambda: {(task_id, index): "running" for index in range(count)}


class FakeClock:
    def __init__(self) -> None:
        self.now = 1_000_000.0

    def __call__(self) -> float:
        return self.now

    def sleep(self, seconds: float) -> None:
        self.now += seconds


def window(
    store: SharedStore, states: SiblingStates, *, window: float = 5.0, clock: FakeClock | None = None
) -> StormWindow:
    """A short poll and settle keep the suite fast; the protocol is the one production runs."""
    timing: dict[str, Any] = {} if clock is None else {"clock": clock, "sleep": clock.sleep}
    return StormWindow(group=GROUP, window=window, store=store, sibling_states=states, poll=0.02, settle=0.05,
                       **timing)


def member(index: int, task_id: str = "process") -> StormMember:
    return StormMember(task_id=task_id, map_index=index, try_number=1, exception=f"ValueError: row {index}")


def fail_together(store: SharedStore, count: int, *, window_seconds: float = 5.0) -> list[list[StormMember] | None]:
    """``count`` instances join at once, each from its own thread, as their callbacks would."""
    states = all_running(count)
    start = threading.Barrier(count)

    def join(index: int) -> list[StormMember] | None:
        start.wait()
        return window(store, states, window=window_seconds).join(member(index))

    with ThreadPoolExecutor(max_workers=count) as pool:
        return list(pool.map(join, range(count)))


def test_two_hundred_simultaneous_failures_make_one_summary_naming_all_of_them() -> None:
    store = SharedStore()

    results = fail_together(store, 200)

    summaries = [result for result in results if result is not None]
    assert len(summaries) == 1
    assert sorted(m.map_index for m in summaries[0]) == list(range(200))


def test_the_leader_sends_as_soon_as_every_sibling_has_recorded_itself_not_at_the_window_end() -> None:
    store = SharedStore()
    clock_at_start = time.monotonic()

    fail_together(store, 20, window_seconds=30.0)

    assert time.monotonic() - clock_at_start < 15.0


def test_nothing_is_left_in_the_store_once_the_summary_is_gathered() -> None:
    store = SharedStore()

    fail_together(store, 30)

    assert [key for key in store.values if not key.endswith(".window")] == []


def test_a_sibling_still_running_without_a_record_keeps_the_leader_waiting_until_the_window_ends() -> None:
    store = SharedStore()
    leader = window(store, all_running(2), window=0.4)
    started = time.monotonic()

    gathered = leader.join(member(0))

    assert time.monotonic() - started >= 0.4
    assert [m.label for m in gathered or []] == ["process[0]"]


def test_siblings_that_succeeded_are_not_waited_for() -> None:
    store = SharedStore()
    states = {("process", 0): "running", ("process", 1): "success", ("process", 2): "skipped"}
    leader = window(store, lambda: states, window=30.0)
    started = time.monotonic()

    leader.join(member(0))

    assert time.monotonic() - started < 5.0


def test_a_failure_after_the_window_closed_opens_the_next_window_and_no_instance_is_reported_twice() -> None:
    store = SharedStore()
    states = all_running(3)
    first = window(store, states, window=0.2).join(member(0))

    late = [window(store, states, window=0.2).join(member(index)) for index in (1, 2)]

    reported = [m.label for batch in [first, *late] if batch for m in batch]
    assert sorted(reported) == ["process[0]", "process[1]", "process[2]"]
    assert len(reported) == len(set(reported))


def test_records_of_a_leader_that_died_are_reported_by_the_next_failure_after_the_window_is_abandoned() -> None:
    store, clock = SharedStore(), FakeClock()
    states = all_running(3)
    # instance 0 opened a window and was killed with its worker: the window is never closed
    store.set(f"{GROUP}.process.0", member(0).to_json())
    store.set(f"{GROUP}.window", '{"leader": "dead-worker", "closes_at": %s}' % (clock.now + 60))
    follower = window(store, states, window=60.0, clock=clock)
    assert follower.join(member(1)) is None  # the window still looks open: it records itself and leaves

    clock.now += 60 + ABANDONED_AFTER + 1
    rescuer = window(store, states, window=60.0, clock=clock)

    gathered = rescuer.join(member(2))

    assert [m.label for m in gathered or []] == ["process[0]", "process[1]", "process[2]"]


def test_instances_of_different_mapped_tasks_share_the_runs_summary() -> None:
    store = SharedStore()
    failing = [member(0, "extract"), member(0, "load"), member(1, "load")]
    states = {(m.task_id, m.map_index): "running" for m in failing}
    start = threading.Barrier(len(failing))

    def join(failed: StormMember) -> list[StormMember] | None:
        start.wait()
        return window(store, lambda: states).join(failed)

    with ThreadPoolExecutor(max_workers=len(failing)) as pool:
        summaries = [result for result in pool.map(join, failing) if result is not None]

    assert [sorted(m.label for m in summary) for summary in summaries] == [["extract[0]", "load[0]", "load[1]"]]


@pytest.mark.parametrize("indexes, expected", [
    ([0, 1, 2, 3], "process[0-3]"),
    ([0, 2, 3, 7], "process[0,2-3,7]"),
    ([5], "process[5]"),
])
def test_compact_ranges_names_the_instances_briefly(indexes: list[int], expected: str) -> None:
    assert compact_ranges(member(index) for index in indexes) == expected


def test_summary_lists_fifty_instances_and_counts_the_rest() -> None:
    lines = summary_lines(member(index) for index in range(200))

    assert lines[0] == "- process[0] (try 1): ValueError: row 0"
    assert len(lines) == 51
    assert lines[-1] == "… and 150 more"
