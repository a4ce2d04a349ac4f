"""A local stand-in for the part of Airflow's public REST API a responder calls, for benchmarks at scale.

Variables (list by ``variable_key_pattern`` with paging, get, create, update, delete) and HITL records
(read; answer once: a second answer is refused with 409, as Airflow's row-locked ``PATCH`` does), and
``GET /auth/token``. It records when each answer arrived, so a benchmark can time a click to its
decision without Airflow's own scheduling in the figure. Correctness is tested against the real
api-server (tests/test_slack_socket_mode.py, tests/e2e); this serves a thousand pending questions
without a thousand DAG runs.
"""

from __future__ import annotations

import re
import time
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import unquote

from tests.servers.http import Answer, LocalHTTPServer, Request

_RECORD = re.compile(r"^/api/v2/dags/[^/]+/dagRuns/[^/]+/taskInstances/[^/]+/-?\d+/hitlDetails$")


@dataclass
class AirflowAPIServer(LocalHTTPServer):
    variables: dict[str, str] = field(default_factory=dict)
    records: dict[str, dict[str, Any]] = field(default_factory=dict)
    #: record path → when its answer arrived (time.monotonic())
    answered_at: dict[str, float] = field(default_factory=dict)

    def add_record(self, path: str) -> None:
        with self._lock:
            self.records[f"/api/v2{path}"] = {"response_received": False, "chosen_options": None}

    def route(self, request: Request) -> Answer:
        path = unquote(request.path)
        if path == "/auth/token":
            return Answer(201, {"access_token": "benchmark-token"})
        if _RECORD.match(path):
            return self._record(request.method, path, request.body)
        if path == "/api/v2/variables":
            return self._variables(request)
        if path.startswith("/api/v2/variables/"):
            return self._variable(request.method, path.removeprefix("/api/v2/variables/"), request.body)
        return Answer(404, {"detail": "Not Found"})

    def _record(self, method: str, path: str, body: Any) -> Answer:
        with self._lock:
            record = self.records.get(path)
            if record is None:
                return Answer(404, {"detail": "not found"})
            if method == "GET":
                return Answer(200, record)
            if record["response_received"]:
                return Answer(409, {"detail": "already answered"})
            record.update(response_received=True, chosen_options=body.get("chosen_options"),
                          params_input=body.get("params_input"), responded_at=time.time(),
                          responded_by_user={"id": "benchmark", "name": "benchmark"})
            self.answered_at[path.removeprefix("/api/v2")] = time.monotonic()
            return Answer(200, record)

    def _variables(self, request: Request) -> Answer:
        if request.method == "POST":
            with self._lock:
                self.variables[request.body["key"]] = request.body["value"]
            return Answer(201, request.body)
        prefix = request.query.get("variable_key_pattern", "")
        offset, limit = int(request.query.get("offset", 0)), int(request.query.get("limit", 100))
        with self._lock:
            found = [{"key": k, "value": v} for k, v in sorted(self.variables.items()) if prefix in k]
        return Answer(200, {"variables": found[offset:offset + limit], "total_entries": len(found)})

    def _variable(self, method: str, key: str, body: Any) -> Answer:
        with self._lock:
            if method == "DELETE":
                return Answer(204 if self.variables.pop(key, None) is not None else 404, None)
            if method == "PATCH" and key in self.variables:
                self.variables[key] = body["value"]
            if key not in self.variables:
                return Answer(404, {"detail": "not found"})
            return Answer(200, {"key": key, "value": self.variables[key]})
