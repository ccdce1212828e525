"""The label store's SQLite side: its schema (and the columns added since a store was made),
transactions, and who may recover a claim."""

from __future__ import annotations

import os
import sqlite3

__all__ = ["SCHEMA", "Transaction", "WriteCheck", "add_missing_columns", "dead_here"]

SCHEMA = """
CREATE TABLE IF NOT EXISTS labels (
    goal TEXT NOT NULL,
    prompt TEXT NOT NULL,
    model TEXT NOT NULL,
    message TEXT NOT NULL,
    label INTEGER,
    status TEXT NOT NULL,
    attempts INTEGER NOT NULL DEFAULT 0,
    reason TEXT,
    seen REAL NOT NULL,
    updated REAL NOT NULL,
    retry_at REAL,
    owner TEXT,
    lease_until REAL,
    PRIMARY KEY (goal, prompt, model, message)
);
CREATE INDEX IF NOT EXISTS labels_status ON labels (goal, prompt, model, status, seen);
CREATE INDEX IF NOT EXISTS labels_updated ON labels (goal, prompt, model, updated);
CREATE TABLE IF NOT EXISTS preferences (
    goal TEXT NOT NULL,
    prompt TEXT NOT NULL,
    model TEXT NOT NULL,
    a TEXT NOT NULL,
    b TEXT NOT NULL,
    preference REAL NOT NULL,
    updated REAL NOT NULL,
    PRIMARY KEY (goal, prompt, model, a, b)
);
CREATE TABLE IF NOT EXISTS models (
    goal TEXT NOT NULL,
    prompt TEXT NOT NULL,
    model TEXT NOT NULL,
    kind TEXT NOT NULL,
    version INTEGER NOT NULL,
    weights BLOB NOT NULL,
    trained_on INTEGER NOT NULL,
    created REAL NOT NULL,
    PRIMARY KEY (goal, prompt, model, kind, version)
);
"""


class WriteCheck(Exception):
    """Ends the write check's transaction (rolled back)."""


def dead_here(owner: str | None, host: str) -> bool:
    """Whether ``owner`` (``host:pid``) is a process of this host that no longer runs."""
    if not owner:
        return True  # claimed before leases existed
    owner_host, _, pid = owner.rpartition(":")
    if owner_host != host or not pid.isdigit():
        return False
    try:
        os.kill(int(pid), 0)
    except ProcessLookupError:
        return True
    except PermissionError:
        return False
    return False


def add_missing_columns(conn: sqlite3.Connection) -> None:
    """A store written by an earlier version gains the columns added since."""
    have = {row[1] for row in conn.execute("PRAGMA table_info(labels)").fetchall()}
    for column in ("retry_at REAL", "owner TEXT", "lease_until REAL"):
        if column.split()[0] not in have:
            conn.execute(f"ALTER TABLE labels ADD COLUMN {column}")


class Transaction:
    def __init__(self, conn: sqlite3.Connection):
        self.conn = conn

    def __enter__(self) -> sqlite3.Connection:
        self.conn.execute("BEGIN IMMEDIATE")
        return self.conn

    def __exit__(self, exc_type, *_: object) -> None:
        self.conn.execute("ROLLBACK" if exc_type else "COMMIT")
