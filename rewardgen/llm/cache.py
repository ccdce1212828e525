"""A persistent response cache in SQLite: one row per sample, committed as it arrives."""

from __future__ import annotations

import hashlib
import json
import sqlite3
import threading
import time
import warnings
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

__all__ = ["ResponseCache", "request_key"]


def request_key(
    endpoint: str, model: str, messages: Sequence[Mapping[str, Any]], params: Mapping[str, Any], sample: int
) -> str:
    """The cache key of sample ``sample`` of a request: sample i of a temperature > 0 request is
    its own entry, so re-running a search with the same settings returns the same code."""
    blob = json.dumps(
        {
            "endpoint": endpoint,
            "model": model,
            "messages": list(messages),
            "params": dict(params),
            "sample": sample,
        },
        sort_keys=True,
        separators=(",", ":"),
        default=str,
    )
    return hashlib.sha256(blob.encode()).hexdigest()


class ResponseCache:
    """SQLite cache of completions (WAL mode, one commit per insert: a killed process loses
    nothing it already received). A corrupt file is moved aside and a new one started.

    Example:
        >>> import tempfile, pathlib
        >>> cache = ResponseCache(pathlib.Path(tempfile.mkdtemp()) / "c.sqlite")
        >>> cache.put("k", {"text": "hi"}); cache.get("k")
        {'text': 'hi'}
    """

    def __init__(self, path: str | Path):
        self.path = Path(path)
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self._lock = threading.Lock()
        self.moved_aside: Path | None = None
        try:
            self._db = self._open()
        except sqlite3.DatabaseError as exc:
            self.moved_aside = self.path.with_name(f"{self.path.name}.corrupt-{int(time.time())}")
            self.path.replace(self.moved_aside)
            for suffix in ("-wal", "-shm"):
                Path(str(self.path) + suffix).unlink(missing_ok=True)
            warnings.warn(
                f"LLM cache {self.path} was corrupt ({exc}); moved it to {self.moved_aside} "
                "and started a new one",
                stacklevel=2,
            )
            self._db = self._open()

    def _open(self) -> sqlite3.Connection:
        db = sqlite3.connect(self.path, check_same_thread=False, timeout=30)
        try:
            db.execute("PRAGMA journal_mode=WAL")
            db.execute(
                "CREATE TABLE IF NOT EXISTS responses (key TEXT PRIMARY KEY, value TEXT NOT NULL, "
                "created REAL NOT NULL)"
            )
            ok = db.execute("PRAGMA quick_check").fetchone()
            if not ok or ok[0] != "ok":
                raise sqlite3.DatabaseError(f"integrity check says {ok}")
            db.execute("SELECT count(*) FROM responses").fetchone()
        except sqlite3.DatabaseError:
            db.close()
            raise
        return db

    def get(self, key: str) -> dict[str, Any] | None:
        with self._lock:
            row = self._db.execute("SELECT value FROM responses WHERE key = ?", (key,)).fetchone()
        return None if row is None else json.loads(row[0])

    def put(self, key: str, value: Mapping[str, Any]) -> None:
        with self._lock:
            self._db.execute(
                "INSERT OR REPLACE INTO responses VALUES (?, ?, ?)", (key, json.dumps(value), time.time())
            )
            self._db.commit()

    def __len__(self) -> int:
        with self._lock:
            return self._db.execute("SELECT count(*) FROM responses").fetchone()[0]

    def close(self) -> None:
        with self._lock:
            self._db.close()
