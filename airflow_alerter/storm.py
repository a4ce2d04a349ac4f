"""Alert storms: when many mapped task instances fail together, one summary goes out, not one alert each.

Why a leader that waits, rather than "the last failure sends the summary": Airflow runs each mapped
instance's callback in its own process, often on different workers, and an instance's terminal
state reaches the metadata DB only *after* its callbacks ran. No instance can tell from the DB
whether it is the last to fail, and instances that go on to succeed run no failure callback at all.

So every instance first *records* itself in a shared store (Airflow Variables), then:

- if a window is open for its group (dag, run, connection, kind), it is done: that window's leader
  will report it;
- otherwise it opens a window and leads it: it waits until the window closes, or until every
  instance of its own mapped task has finished or recorded itself, closes the window, collects
  every record of the group and sends one summary.

No record is lost: an instance that saw the window open recorded itself before the leader closed
it, and the leader collects only after closing. An instance that finds the window closed opens
the next one, and collects whatever the previous leader missed. A record is deleted as it is
collected, so nothing is reported twice. If a leader dies while waiting (its worker is killed), its
window counts as abandoned ``window + ABANDONED_AFTER`` seconds after it opened; the next instance
to fail then opens a new window and reports the abandoned records along with its own.

This module is the protocol only; ``airflow_alerter.notifications.storm`` binds it to Airflow.
"""

from __future__ import annotations

import json
import time
import uuid
from collections.abc import Callable, Iterable, Mapping
from dataclasses import asdict, dataclass, field, fields
from typing import Any, Protocol

#: an instance that has not finished: it may still record itself
UNFINISHED_STATES = frozenset(
    {None, "none", "scheduled", "queued", "running", "up_for_retry", "up_for_reschedule", "deferred", "restarting"}
)
#: seconds past its closing time after which a window whose leader never closed it counts as abandoned
ABANDONED_AFTER = 30.0
#: the most instances a summary lists one per line; the rest are counted
LISTED_INSTANCES = 50


@dataclass(frozen=True)
class StormMember:
    """One task instance's alert, as recorded for the summary."""

    task_id: str
    map_index: int
    try_number: int | None = None
    exception: str | None = None
    log_url: str | None = None

    @property
    def label(self) -> str:
        return f"{self.task_id}[{self.map_index}]"

    def to_json(self) -> str:
        return json.dumps(asdict(self))

    @classmethod
    def from_json(cls, raw: str) -> StormMember:
        data = json.loads(raw)
        return cls(**{item.name: data.get(item.name) for item in fields(cls)})


class StormStore(Protocol):
    """Shared key-value storage every worker sees (Airflow Variables in production)."""

    def get(self, key: str) -> str | None: ...

    def set(self, key: str, value: str) -> None: ...

    def delete(self, key: str) -> None: ...


#: the mapped task instances of the run and their states, keyed by (task_id, map_index)
SiblingStates = Callable[[], Mapping[tuple[str, int], str | None]]


@dataclass
class StormWindow:
    """The aggregation protocol for one group: every instance of the group calls :meth:`join`.

    :param group: the store-key prefix naming the group (dag, run, connection, kind).
    :param window: the longest a leader waits for more failures, in seconds.
    :param poll: seconds between the leader's looks at its siblings.
    :param settle: seconds a new leader waits before confirming it won the claim (two instances may
        claim at once; the later write wins and the other follows).
    """

    group: str
    window: float
    store: StormStore
    sibling_states: SiblingStates
    poll: float = 2.0
    settle: float = 0.5
    clock: Callable[[], float] = time.time
    sleep: Callable[[float], None] = time.sleep
    _claim: str = field(default_factory=lambda: uuid.uuid4().hex)

    @property
    def window_key(self) -> str:
        return f"{self.group}.window"

    def member_key(self, task_id: str, map_index: int) -> str:
        return f"{self.group}.{task_id}.{map_index}"

    def join(self, member: StormMember) -> list[StormMember] | None:
        """Record ``member``; the members to report if this instance led a window, else None.

        None means another instance leads the open window and will report ``member``.
        """
        self.store.set(self.member_key(member.task_id, member.map_index), member.to_json())
        if self._open_window() is not None:
            return None
        closes_at = self.clock() + self.window
        self.store.set(self.window_key, json.dumps({"leader": self._claim, "closes_at": closes_at}))
        self.sleep(self.settle)
        current = self._open_window()
        if current is None or current.get("leader") != self._claim:
            return None  # another instance claimed after us; it collects after closing, so it sees our record
        self._wait(member, closes_at)
        self.store.set(self.window_key, json.dumps({"leader": self._claim, "closed": True}))
        return self._collect(member)

    def _open_window(self) -> dict[str, Any] | None:
        raw = self.store.get(self.window_key)
        if not raw:
            return None
        try:
            state = json.loads(raw)
            open_until = float(state["closes_at"]) + ABANDONED_AFTER
        except (ValueError, KeyError, TypeError):
            return None  # closed (no closes_at) or unreadable: treat as no window
        return state if not state.get("closed") and self.clock() < open_until else None

    def _wait(self, leader: StormMember, closes_at: float) -> None:
        """Until the window closes, or until every sibling of the leader's task has finished or recorded itself.

        Only the leader's own mapped task is waited for: instances of tasks downstream of it cannot
        start before the leader's task is finished, which happens only after this callback returns.
        """
        while self.clock() < closes_at:
            if not self._siblings_pending(leader):
                return
            self.sleep(min(self.poll, max(closes_at - self.clock(), 0.0)))

    def _siblings_pending(self, leader: StormMember) -> bool:
        for (task_id, map_index), state in self.sibling_states().items():
            if task_id != leader.task_id or map_index == leader.map_index or state not in UNFINISHED_STATES:
                continue
            if self.store.get(self.member_key(task_id, map_index)) is None:
                return True
        return False

    def _collect(self, leader: StormMember) -> list[StormMember]:
        """Every record of the group, each deleted as it is taken, so no other leader reports it again."""
        candidates = set(self.sibling_states()) | {(leader.task_id, leader.map_index)}
        members = []
        for task_id, map_index in sorted(candidates):
            key = self.member_key(task_id, map_index)
            raw = self.store.get(key)
            if raw:
                self.store.delete(key)
                members.append(StormMember.from_json(raw))
        return members


def summary_lines(members: Iterable[StormMember], limit: int = LISTED_INSTANCES) -> list[str]:
    """One line per instance (the first ``limit``), then how many more; the exception's first line only."""
    listed = list(members)
    lines = []
    for member in listed[:limit]:
        line = f"- {member.label}"
        if member.try_number:
            line += f" (try {member.try_number})"
        if member.exception:
            line += f": {member.exception.splitlines()[0][:200]}"
        lines.append(line)
    if len(listed) > limit:
        lines.append(f"… and {len(listed) - limit} more")
    return lines


def compact_ranges(members: Iterable[StormMember]) -> str:
    """``process[0-3,7], load[2]``: which instances, short enough for a subject or a table cell."""
    indexes: dict[str, list[int]] = {}
    for member in members:
        indexes.setdefault(member.task_id, []).append(member.map_index)
    return ", ".join(f"{task_id}[{_ranges(sorted(found))}]" for task_id, found in indexes.items())


def _ranges(numbers: list[int]) -> str:
    spans: list[list[int]] = []
    for number in numbers:
        if spans and number == spans[-1][1] + 1:
            spans[-1][1] = number
        else:
            spans.append([number, number])
    return ",".join(str(start) if start == end else f"{start}-{end}" for start, end in spans)
