"""The label store: every message the agents saw and what the LLM said of it, in one SQLite file
(WAL mode) shared by all env workers and the annotation service, and kept across runs.

Rows are keyed by (goal, prompt version, model, message): a label is reused by any later run
that asks the same question of the same model. A row is ``pending`` (reported by a worker, not
yet sent), ``in_flight`` (claimed by the annotation service), ``labelled`` or ``failed`` (the
model's answers could not be parsed ``max_attempts`` times; the reason is kept, and the message
is asked again after a back-off that doubles with each failure, so a spell of bad answers costs
no label for good). A claim is leased to its owner (host and process): a second service on the
same store recovers only leases that expired or whose owner died. SQLite commits are atomic and
durable: a SIGKILL loses at most the transaction in progress, never a label written before it.
"""

from __future__ import annotations

import os
import socket
import sqlite3
import time
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path

from rewardgen.errors import RewardgenError
from rewardgen.oni.sqlite import SCHEMA, Transaction, WriteCheck, add_missing_columns, dead_here

__all__ = ["DEFAULT_STORE", "LabelKey", "LabelStore"]

#: A failed message is asked again after this many seconds, doubled for each further failure...
RETRY_BASE_S = 60.0
#: ...up to this long.
RETRY_MAX_S = 3600.0
#: How long a claim is the claimer's before another service may take it back.
LEASE_S = 900.0

DEFAULT_STORE = (
    Path(os.environ.get("XDG_CACHE_HOME", Path.home() / ".cache")) / "rewardgen" / "oni_labels.sqlite"
)


@dataclass(frozen=True)
class LabelKey:
    """What a label answers: the goal, the prompt's version and the model asked."""

    goal: str
    prompt: str
    model: str

    def params(self) -> tuple[str, str, str]:
        return (self.goal, self.prompt, self.model)


class LabelStore:
    """One process's handle on the label store (reconnects after a fork; cheap to pickle).

    Example:
        >>> import tempfile
        >>> store = LabelStore(Path(tempfile.mkdtemp()) / "l.sqlite", LabelKey("default", "1", "m"))
        >>> store.submit(["You find a gold piece."])
        1
        >>> store.claim(8)
        ['You find a gold piece.']
        >>> store.put_labels({"You find a gold piece.": 1})
        >>> store.labels()
        {'You find a gold piece.': 1}
    """

    def __init__(self, path: str | Path, key: LabelKey, timeout_s: float = 5.0):
        self.path, self.key, self.timeout_s = Path(path), key, timeout_s
        self._conn: sqlite3.Connection | None = None
        self._pid = -1

    def __getstate__(self) -> dict:
        return {"path": self.path, "key": self.key, "timeout_s": self.timeout_s}

    def __setstate__(self, state: dict) -> None:
        self.__init__(state["path"], state["key"], state["timeout_s"])  # type: ignore[misc]

    @property
    def conn(self) -> sqlite3.Connection:
        if self._conn is None or self._pid != os.getpid():
            self.path.parent.mkdir(parents=True, exist_ok=True)
            conn = sqlite3.connect(self.path, timeout=self.timeout_s, isolation_level=None)
            deadline = time.monotonic() + self.timeout_s
            while True:  # switching a new file to WAL may be refused at once (no busy wait): retry
                try:
                    conn.execute("PRAGMA journal_mode=WAL")
                    conn.execute("PRAGMA synchronous=NORMAL")  # durable at WAL checkpoints; atomic always
                    conn.executescript(SCHEMA)
                    add_missing_columns(conn)
                    break
                except sqlite3.OperationalError:
                    if time.monotonic() > deadline:
                        conn.close()
                        raise
                    time.sleep(0.05)
            self._conn, self._pid = conn, os.getpid()
        return self._conn

    def close(self) -> None:
        if self._conn is not None and self._pid == os.getpid():
            self._conn.close()
        self._conn = None

    def check(self) -> LabelStore:
        """Open the store and make sure it can be used, before anything trains on it: a file (not a
        directory), a sound SQLite database (``PRAGMA quick_check``), writable. Raises a one-line
        :class:`~rewardgen.errors.RewardgenError` naming the file and the fix."""
        path = self.path
        if path.is_dir():
            raise RewardgenError(
                f"the label store {path} is a directory: pass a file, "
                f"e.g. --store {path / 'oni_labels.sqlite'}"
            )
        try:
            (result,) = self.conn.execute("PRAGMA quick_check").fetchone()
            if result != "ok":
                raise sqlite3.DatabaseError(result)
            with self._transaction() as conn:  # a write that is rolled back: is the file writable?
                conn.execute("CREATE TABLE rewardgen_write_check (x)")
                raise WriteCheck
        except WriteCheck:
            return self
        except sqlite3.DatabaseError as exc:
            self.close()
            text = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
            if "readonly" in text or "read-only" in text or "unable to open" in text:
                raise RewardgenError(
                    f"the label store {path} cannot be written ({text}): make it writable, or pass "
                    "--store with a file you can write"
                ) from None
            raise RewardgenError(
                f"the label store {path} is not a usable SQLite database ({text}): move it aside "
                "(its labels are lost) or pass --store with another file"
            ) from None

    @property
    def owner(self) -> str:
        """Who claims here: this host and process."""
        return f"{socket.gethostname()}:{os.getpid()}"

    # -- workers -------------------------------------------------------------------------------

    def submit(self, messages: Iterable[str]) -> int:
        """Report messages the agents saw; those already known (labelled, pending, in flight or
        failed) are left alone. Returns how many were new. Raises ``sqlite3.OperationalError``
        when the store stays locked past ``timeout_s`` (the caller keeps them for later)."""
        now = time.time()
        rows = [(*self.key.params(), m, now, now) for m in set(messages) if m]
        if not rows:
            return 0
        with self._transaction() as conn:
            before = conn.total_changes
            conn.executemany(
                "INSERT OR IGNORE INTO labels (goal, prompt, model, message, status, seen, updated) "
                "VALUES (?, ?, ?, ?, 'pending', ?, ?)",
                rows,
            )
            return conn.total_changes - before

    def labels(self, since: float = 0.0) -> dict[str, int]:
        """Labelled messages (updated after ``since``, a time.time())."""
        cur = self.conn.execute(
            "SELECT message, label FROM labels WHERE goal=? AND prompt=? AND model=? "
            "AND status='labelled' AND updated > ?",
            (*self.key.params(), since),
        )
        return {m: int(label) for m, label in cur.fetchall()}

    # -- the annotation service ----------------------------------------------------------------

    def claim(self, limit: int, lease_s: float = LEASE_S) -> list[str]:
        """Up to ``limit`` pending messages, newest first, then failed ones whose back-off is over;
        now in flight, leased to this owner for ``lease_s``."""
        if limit < 1:
            raise ValueError(f"claim at least one message, not {limit}")
        now = time.time()
        with self._transaction() as conn:
            rows = conn.execute(
                "SELECT message FROM labels WHERE goal=? AND prompt=? AND model=? AND status='pending' "
                "ORDER BY seen DESC LIMIT ?",
                (*self.key.params(), limit),
            ).fetchall()
            if len(rows) < limit:
                rows += conn.execute(
                    "SELECT message FROM labels WHERE goal=? AND prompt=? AND model=? AND status='failed' "
                    "AND COALESCE(retry_at, 0) <= ? ORDER BY retry_at LIMIT ?",
                    (*self.key.params(), now, limit - len(rows)),
                ).fetchall()
            messages = [r[0] for r in rows]
            conn.executemany(
                "UPDATE labels SET status='in_flight', owner=?, lease_until=? "
                "WHERE goal=? AND prompt=? AND model=? AND message=?",
                [(self.owner, now + lease_s, *self.key.params(), m) for m in messages],
            )
            return messages

    def put_labels(self, labels: dict[str, int]) -> None:
        with self._transaction() as conn:
            conn.executemany(
                "UPDATE labels SET label=?, status='labelled', reason=NULL, updated=? "
                "WHERE goal=? AND prompt=? AND model=? AND message=?",
                [(int(v), time.time(), *self.key.params(), m) for m, v in labels.items()],
            )

    def fail(self, messages: Iterable[str], reason: str, max_attempts: int) -> None:
        """The model's answer for ``messages`` could not be used: back to pending, or ``failed``
        (with ``reason``) after ``max_attempts``, to be asked again after a back-off of
        :data:`RETRY_BASE_S` doubled for each failure past that (at most :data:`RETRY_MAX_S`)."""
        now, key = time.time(), self.key.params()
        with self._transaction() as conn:
            conn.executemany(
                "UPDATE labels SET attempts=attempts+1, reason=?, updated=?, owner=NULL, lease_until=NULL, "
                "status=CASE WHEN attempts+1 >= ? THEN 'failed' ELSE 'pending' END, "
                "retry_at=CASE WHEN attempts+1 >= ? THEN ? + MIN(?, ? * (1 << MIN(attempts+1-?, 20))) "
                "ELSE NULL END "
                "WHERE goal=? AND prompt=? AND model=? AND message=?",
                [
                    (
                        reason,
                        now,
                        max_attempts,
                        max_attempts,
                        now,
                        RETRY_MAX_S,
                        RETRY_BASE_S,
                        max_attempts,
                        *key,
                        m,
                    )
                    for m in messages
                ],
            )

    def release(self, messages: Iterable[str]) -> None:
        """In-flight messages back to pending (the model was not reached: no attempt counted)."""
        with self._transaction() as conn:
            self._set(conn, list(messages), "status='pending', owner=NULL, lease_until=NULL")

    def retry_failed(self) -> int:
        """Every failed message back to pending with its attempts forgotten (a person's call,
        ``rewardgen oni labels --retry-failed``); returns how many."""
        with self._transaction() as conn:
            cur = conn.execute(
                "UPDATE labels SET status='pending', attempts=0, retry_at=NULL "
                "WHERE goal=? AND prompt=? AND model=? AND status='failed'",
                self.key.params(),
            )
            return cur.rowcount

    def recover(self) -> int:
        """Messages left in flight by a service that is gone: its lease expired, or its process
        on this host is dead. A live service's claims are left alone."""
        now, host = time.time(), socket.gethostname()
        with self._transaction() as conn:
            rows = conn.execute(
                "SELECT message, owner, lease_until FROM labels "
                "WHERE goal=? AND prompt=? AND model=? AND status='in_flight'",
                self.key.params(),
            ).fetchall()
            gone = [m for m, owner, until in rows if (until or 0) < now or dead_here(owner, host)]
            self._set(conn, gone, "status='pending', owner=NULL, lease_until=NULL")
            return len(gone)

    def trim(self, max_pending: int) -> int:
        """Bound the backlog: drop the oldest pending messages beyond ``max_pending`` (a worker
        that sees one again reports it again)."""
        with self._transaction() as conn:
            cur = conn.execute(
                "DELETE FROM labels WHERE rowid IN (SELECT rowid FROM labels WHERE goal=? AND prompt=? "
                "AND model=? AND status='pending' ORDER BY seen DESC LIMIT -1 OFFSET ?)",
                (*self.key.params(), max_pending),
            )
            return cur.rowcount

    def keys(self) -> list[LabelKey]:
        """Every (goal, prompt, model) the store holds messages for, sorted."""
        cur = self.conn.execute(
            "SELECT DISTINCT goal, prompt, model FROM labels ORDER BY goal, prompt, model"
        )
        return [LabelKey(*row) for row in cur.fetchall()]

    def counts(self) -> dict[str, int]:
        """Messages per status, for this key."""
        cur = self.conn.execute(
            "SELECT status, COUNT(*) FROM labels WHERE goal=? AND prompt=? AND model=? GROUP BY status",
            self.key.params(),
        )
        return {status: n for status, n in cur.fetchall()}

    def reasons(self) -> dict[str, str]:
        """Why failed messages stayed unlabelled."""
        cur = self.conn.execute(
            "SELECT message, reason FROM labels WHERE goal=? AND prompt=? AND model=? AND status='failed'",
            self.key.params(),
        )
        return dict(cur.fetchall())

    # -- pairwise preferences (the ranking reward model's annotations) -------------------------

    def pairs_to_compare(self, limit: int, seed: int | None = None) -> list[tuple[str, str]]:
        """Up to ``limit`` random pairs of reported messages never compared (in either order)."""
        import random

        rows = self.conn.execute(
            "SELECT message FROM labels WHERE goal=? AND prompt=? AND model=?", self.key.params()
        ).fetchall()
        messages = [r[0] for r in rows]
        if len(messages) < 2:
            return []
        done = {
            tuple(sorted(r))
            for r in self.conn.execute(
                "SELECT a, b FROM preferences WHERE goal=? AND prompt=? AND model=?", self.key.params()
            ).fetchall()
        }
        rng = random.Random(seed)
        pairs: list[tuple[str, str]] = []
        for _ in range(limit * 4):
            a, b = rng.sample(messages, 2)
            if tuple(sorted((a, b))) not in done:
                done.add(tuple(sorted((a, b))))
                pairs.append((a, b))
                if len(pairs) == limit:
                    break
        return pairs

    def put_preferences(self, preferences: dict[tuple[str, str], float]) -> None:
        """The LLM's preference of each pair: 1.0 for the first message, 0.0 for the second, 0.5 neither."""
        with self._transaction() as conn:
            conn.executemany(
                "INSERT OR REPLACE INTO preferences VALUES (?, ?, ?, ?, ?, ?, ?)",
                [(*self.key.params(), a, b, float(p), time.time()) for (a, b), p in preferences.items()],
            )

    def preference_count(self) -> int:
        (n,) = self.conn.execute(
            "SELECT COUNT(*) FROM preferences WHERE goal=? AND prompt=? AND model=?", self.key.params()
        ).fetchone()
        return int(n)

    def preferences(self) -> dict[tuple[str, str], float]:
        cur = self.conn.execute(
            "SELECT a, b, preference FROM preferences WHERE goal=? AND prompt=? AND model=?",
            self.key.params(),
        )
        return {(a, b): float(p) for a, b, p in cur.fetchall()}

    # -- reward models trained on the labels -----------------------------------------------------

    def publish(self, kind: str, weights: bytes, trained_on: int) -> int:
        """Store a trained reward model's weights as the next version of ``kind``; returns it."""
        with self._transaction() as conn:
            (last,) = conn.execute(
                "SELECT COALESCE(MAX(version), 0) FROM models "
                "WHERE goal=? AND prompt=? AND model=? AND kind=?",
                (*self.key.params(), kind),
            ).fetchone()
            conn.execute(
                "INSERT INTO models VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
                (*self.key.params(), kind, last + 1, sqlite3.Binary(weights), trained_on, time.time()),
            )
            return last + 1

    def trained_on(self, kind: str) -> int:
        """How many labels (or preferences) the newest ``kind`` model was trained on (0: none yet)."""
        (n,) = self.conn.execute(
            "SELECT COALESCE(MAX(trained_on), 0) FROM models "
            "WHERE goal=? AND prompt=? AND model=? AND kind=?",
            (*self.key.params(), kind),
        ).fetchone()
        return int(n)

    def latest(self, kind: str, newer_than: int = 0) -> tuple[int, bytes, int] | None:
        """(version, weights, labels it was trained on) of the newest ``kind`` model, if newer."""
        row = self.conn.execute(
            "SELECT version, weights, trained_on FROM models WHERE goal=? AND prompt=? AND model=? "
            "AND kind=? AND version > ? ORDER BY version DESC LIMIT 1",
            (*self.key.params(), kind, newer_than),
        ).fetchone()
        return (int(row[0]), bytes(row[1]), int(row[2])) if row else None

    # -- helpers -------------------------------------------------------------------------------

    def _set(self, conn: sqlite3.Connection, messages: list[str], assignment: str) -> None:
        conn.executemany(
            f"UPDATE labels SET {assignment} WHERE goal=? AND prompt=? AND model=? AND message=?",
            [(*self.key.params(), m) for m in messages],
        )

    def _transaction(self):
        return Transaction(self.conn)
