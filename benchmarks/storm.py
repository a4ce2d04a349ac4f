"""How long storm aggregation holds back one failing mapped instance's alert (#17 item 6).

The leader of an alert window waits until the window closes or until every sibling of its mapped
task has finished or recorded itself; only then does it send. This measures, with the protocol's
production timings (window 10 s, poll 2 s, settle 0.5 s) and a real clock, the time from the
failure callback starting to the alert being handed to the flavor:

- storm aggregation off (``storm_window=0``): the alert goes straight to the flavor;
- one instance fails, its siblings have all finished (succeeded);
- one instance fails while its siblings are still running (the common case: one bad input among
  many slow ones): the leader cannot know whether more will fail, so it waits the whole window;
- ten instances fail together: one summary, for comparison.

The store is in memory (Airflow Variables add a few milliseconds per call through the execution
API), so the figures are the protocol's own waits. Usage: python benchmarks/storm.py
"""

from __future__ import annotations

import statistics
import sys
import threading
import time
from collections.abc import Callable
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from airflow_alerter.storm import StormMember, StormWindow

WINDOW = 10.0  # the default storm_window before this measurement
TASK = "process"
SIBLINGS = 10


class MemoryStore:
    def __init__(self) -> None:
        self.values: dict[str, str] = {}
        self.lock = threading.Lock()

    def get(self, key: str) -> str | None:
        with self.lock:
            return self.values.get(key)

    def set(self, key: str, value: str) -> None:
        with self.lock:
            self.values[key] = value

    def delete(self, key: str) -> None:
        with self.lock:
            self.values.pop(key, None)


def window(store: MemoryStore, states: Callable[[], dict[tuple[str, int], str | None]]) -> StormWindow:
    return StormWindow(group="bench.storm", window=WINDOW, store=store, sibling_states=states)


def lone_failure(siblings_state: str | None) -> float:
    """Seconds until the one failed instance's alert is handed to the flavor."""
    states = {(TASK, index): siblings_state for index in range(1, SIBLINGS)} | {(TASK, 0): "failed"}
    started = time.monotonic()
    members = window(MemoryStore(), lambda: states).join(StormMember(TASK, 0))
    assert members is not None and [member.map_index for member in members] == [0]
    return time.monotonic() - started


def ten_together() -> float:
    """Seconds until the one summary of ten instances failing at the same moment is handed over."""
    store = MemoryStore()
    states = {(TASK, index): "running" for index in range(SIBLINGS)}
    sent: list[float] = []
    started = time.monotonic()

    def fail(index: int) -> None:
        members = window(store, lambda: states).join(StormMember(TASK, index))
        if members:
            sent.append(time.monotonic() - started)

    threads = [threading.Thread(target=fail, args=(index,)) for index in range(SIBLINGS)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert len(sent) == 1
    return sent[0]


def main(repeats: int = 3) -> None:
    cases: dict[str, Callable[[], float]] = {
        "storm_window=0 (aggregation off)": lambda: 0.0,
        "one fails, its siblings finished": lambda: lone_failure("success"),
        "one fails, its siblings still running": lambda: lone_failure("running"),
        "ten fail together (one summary)": ten_together,
    }
    print(f"| case | alert handed to the flavor after (median of {repeats}) |\n|---|---|")
    for name, case in cases.items():
        print(f"| {name} | {statistics.median(case() for _ in range(repeats)):.2f} s |")


if __name__ == "__main__":
    main()
