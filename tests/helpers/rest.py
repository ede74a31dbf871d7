"""A small blocking JSON client for the REST API (urllib only, so it tests the wire, not a library)."""

from __future__ import annotations

import json
import time
import urllib.error
import urllib.request
from collections.abc import Callable
from typing import Any


class ApiClient:
    """Calls `base_url` (…/v1.0) with a token."""

    def __init__(self, base_url: str, token: str | None) -> None:
        self.base_url = base_url
        self.token = token

    def call(self, method: str, path: str, body: Any = None, *, raw_body: bytes | None = None,
             headers: dict[str, str] | None = None, token_in: str = "query") -> tuple[int, Any, bytes]:
        """(status, parsed JSON or None, raw bytes) of one request."""
        url = self.base_url + path
        all_headers = dict(headers or {})
        if self.token is not None:
            if token_in == "query":
                url += ("&" if "?" in url else "?") + "token=" + self.token
            else:
                all_headers["Authorization"] = f"Bearer {self.token}"
        data = raw_body if raw_body is not None else (json.dumps(body).encode() if body is not None else None)
        if data is not None:
            all_headers.setdefault("Content-Type", "application/json")
        request = urllib.request.Request(url, data=data, method=method, headers=all_headers)
        try:
            with urllib.request.urlopen(request, timeout=15) as response:
                payload = response.read()
                status = response.status
                content_type = response.headers.get("Content-Type", "")
        except urllib.error.HTTPError as error:
            payload = error.read()
            status = error.code
            content_type = error.headers.get("Content-Type", "")
        parsed = json.loads(payload) if payload and "json" in content_type else None
        return status, parsed, payload

    def ok(self, method: str, path: str, body: Any = None) -> Any:
        """The JSON of a request that must succeed."""
        status, parsed, raw = self.call(method, path, body)
        assert status == 200, f"{method} {path} -> {status}: {raw[:500]!r}"
        return parsed

    def get(self, path: str) -> Any:
        """GET that must succeed."""
        return self.ok("GET", path)

    def post(self, path: str, body: Any = None) -> Any:
        """POST that must succeed."""
        return self.ok("POST", path, body)

    def delete(self, path: str) -> Any:
        """DELETE that must succeed."""
        return self.ok("DELETE", path)

    def create_conference(self, name: str = "", **fields: Any) -> dict[str, Any]:
        """POST /conferences of type conference; the created conference."""
        conference: dict[str, Any] = self.post("/conferences", {"type": "conference", "name": name, **fields})
        return conference

    def wait_for(self, path: str, predicate: Callable[[Any], bool], timeout: float = 10.0) -> Any:
        """Poll GET `path` until `predicate(json)` holds; fail with the last JSON after `timeout`."""
        deadline = time.monotonic() + timeout
        while True:
            current = self.get(path)
            if predicate(current):
                return current
            if time.monotonic() > deadline:
                raise AssertionError(f"timed out waiting on {path}; last: {current}")
            time.sleep(0.05)
