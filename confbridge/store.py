"""SQLite persistence of every resource, customer and token (WAL mode, one writer: the event loop).

Tables mirror the model dataclasses column for column (lists and objects as JSON), so a field added
to a model becomes a column on the next start without a hand-written migration. Every `save` is
one transaction.
"""

from __future__ import annotations

import dataclasses
import enum
import json
import secrets
import sqlite3
import typing
from pathlib import Path
from typing import Any, TypeVar

from .models import Call, Conference, Conferencecall, Recording, Resource, Transcribe
from .timestamps import NEVER, now_timestamp

R = TypeVar("R", bound=Resource)

TABLES: dict[type[Resource], str] = {
    Conference: "conferences",
    Conferencecall: "conferencecalls",
    Call: "calls",
    Recording: "recordings",
    Transcribe: "transcribes",
}

MAX_PAGE_SIZE = 100


class Store:
    """The database of one data directory."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self._db = sqlite3.connect(path, isolation_level=None)
        self._depth = 0
        self._db.execute("PRAGMA journal_mode=WAL")
        self._db.execute("PRAGMA synchronous=NORMAL")
        self._db.execute("PRAGMA foreign_keys=ON")
        self._create_schema()

    def close(self) -> None:
        """Close the database."""
        self._db.close()

    # -- schema -----------------------------------------------------------------------------------

    def _create_schema(self) -> None:
        with self.atomic():
            self._db.execute("CREATE TABLE IF NOT EXISTS customers (id TEXT PRIMARY KEY, tm_create TEXT NOT NULL)")
            existing = {row[1] for row in self._db.execute("PRAGMA table_info(customers)")}
            for column in ("webhook_uri", "webhook_secret"):
                if column not in existing:
                    self._db.execute(f"ALTER TABLE customers ADD COLUMN {column} TEXT NOT NULL DEFAULT ''")
            self._db.execute("CREATE TABLE IF NOT EXISTS tokens (token TEXT PRIMARY KEY, "
                             "customer_id TEXT NOT NULL REFERENCES customers(id))")
            self._db.execute("CREATE TABLE IF NOT EXISTS settings (name TEXT PRIMARY KEY, value TEXT NOT NULL)")
            for model, table in TABLES.items():
                columns = [f.name for f in dataclasses.fields(model)]
                self._db.execute(f"CREATE TABLE IF NOT EXISTS {table} (id TEXT PRIMARY KEY, "
                                 + ", ".join(c for c in columns if c != "id") + ")")
                existing = {row[1] for row in self._db.execute(f"PRAGMA table_info({table})")}
                for column in columns:
                    if column not in existing:
                        self._db.execute(f"ALTER TABLE {table} ADD COLUMN {column}")
                self._db.execute(f"CREATE INDEX IF NOT EXISTS {table}_by_customer "
                                 f"ON {table} (customer_id, tm_create)")
            self._db.execute("CREATE UNIQUE INDEX IF NOT EXISTS conferences_by_hash ON conferences (direct_hash)")
            self._db.execute("CREATE INDEX IF NOT EXISTS conferencecalls_by_conference "
                             "ON conferencecalls (conference_id, status)")

    def atomic(self) -> _Transaction:
        """A block whose saves are committed together, or not at all (a crash inside it leaves nothing of it)."""
        return _Transaction(self)

    # -- resources --------------------------------------------------------------------------------

    def save(self, resource: Resource) -> None:
        """Insert or replace a resource, in one transaction."""
        table = TABLES[type(resource)]
        values = {f.name: _to_column(getattr(resource, f.name)) for f in dataclasses.fields(resource)}
        names = ", ".join(values)
        marks = ", ".join("?" for _ in values)
        with self.atomic():
            self._db.execute(f"INSERT OR REPLACE INTO {table} ({names}) VALUES ({marks})", list(values.values()))

    def get(self, model: type[R], resource_id: str) -> R | None:
        """The resource with this id, or None."""
        rows = self._select(model, "id = ?", [resource_id])
        return rows[0] if rows else None

    def find(self, model: type[R], **equals: Any) -> list[R]:
        """Resources whose columns equal the given values (enum values compare as their strings)."""
        where = " AND ".join(f"{name} = ?" for name in equals) or "1"
        return self._select(model, where, [_to_column(v) for v in equals.values()])

    def columns_of(self, model: type[Resource], ids: list[str], names: tuple[str, ...]) -> dict[str, tuple[Any, ...]]:
        """A few raw columns of many resources at once: id -> the values of `names` (ids not found are left out).

        For hot paths that need a status or two, not whole resources (a conference's participant list is parsed
        from JSON every time a whole conference is read)."""
        known = {f.name for f in dataclasses.fields(model)}
        if not set(names) <= known:
            raise ValueError(f"unknown columns {sorted(set(names) - known)} of {model.__name__}")
        found: dict[str, tuple[Any, ...]] = {}
        for start in range(0, len(ids), 500):  # SQLite limits the parameters of one statement
            chunk = ids[start:start + 500]
            marks = ", ".join("?" for _ in chunk)
            for row in self._db.execute(f"SELECT id, {', '.join(names)} FROM {TABLES[model]} WHERE id IN ({marks})",
                                        chunk):
                found[row[0]] = tuple(row[1:])
        return found

    def page(self, model: type[R], customer_id: str, *, page_size: int = MAX_PAGE_SIZE,
             page_token: str | None = None) -> list[R]:
        """One page of a customer's resources that are not deleted, newest first.

        `page_token` is the `tm_create` of the last item of the previous page.
        """
        where = "customer_id = ? AND tm_delete = ?"
        args: list[Any] = [customer_id, NEVER]
        if page_token:
            where += " AND tm_create < ?"
            args.append(page_token)
        size = max(1, min(page_size, MAX_PAGE_SIZE))
        return self._select(model, where + " ORDER BY tm_create DESC LIMIT ?", [*args, size])

    def _select(self, model: type[R], where: str, args: list[Any]) -> list[R]:
        names, hints = _columns(model)
        cursor = self._db.execute(f"SELECT {', '.join(names)} FROM {TABLES[model]} WHERE {where}", args)
        # A NULL is a column added after the row was written: the field's default stands in for it.
        return [model(**{name: _from_column(hint, value) for name, hint, value in zip(names, hints, row, strict=True)
                         if value is not None})
                for row in cursor.fetchall()]

    # -- customers, tokens, settings --------------------------------------------------------------

    def add_customer(self, customer_id: str) -> None:
        """Create a customer if it does not exist."""
        with self.atomic():
            self._db.execute("INSERT OR IGNORE INTO customers (id, tm_create) VALUES (?, ?)",
                             (customer_id, now_timestamp()))

    def set_token(self, token: str, customer_id: str) -> None:
        """Make `token` authenticate `customer_id` (creating the customer if needed)."""
        self.add_customer(customer_id)
        with self.atomic():
            self._db.execute("INSERT OR REPLACE INTO tokens (token, customer_id) VALUES (?, ?)", (token, customer_id))

    def set_webhook(self, customer_id: str, uri: str, secret: str | None = None) -> str:
        """Send the customer's events to `uri` (empty: nowhere), signed with `secret`; returns the secret in force
        (a random one is made and kept the first time none is given)."""
        self.add_customer(customer_id)
        with self.atomic():
            row = self._db.execute("SELECT webhook_secret FROM customers WHERE id = ?", (customer_id,)).fetchone()
            secret = secret or row[0] or secrets.token_hex(32)
            self._db.execute("UPDATE customers SET webhook_uri = ?, webhook_secret = ? WHERE id = ?",
                             (uri, secret, customer_id))
        return secret

    def customer(self, customer_id: str) -> dict[str, str] | None:
        """A customer's id, webhook URI and secret, or None."""
        row = self._db.execute("SELECT id, webhook_uri, webhook_secret, tm_create FROM customers WHERE id = ?",
                               (customer_id,)).fetchone()
        if row is None:
            return None
        return {"id": row[0], "webhook_uri": row[1], "webhook_method": "POST" if row[1] else "",
                "webhook_secret": row[2], "tm_create": row[3]}

    def customer_for_token(self, token: str) -> str | None:
        """The customer a token belongs to, or None."""
        row = self._db.execute("SELECT customer_id FROM tokens WHERE token = ?", (token,)).fetchone()
        return row[0] if row else None

    def setting(self, name: str) -> str | None:
        """A stored setting, or None."""
        row = self._db.execute("SELECT value FROM settings WHERE name = ?", (name,)).fetchone()
        return row[0] if row else None

    def set_setting(self, name: str, value: str) -> None:
        """Store a setting."""
        with self.atomic():
            self._db.execute("INSERT OR REPLACE INTO settings (name, value) VALUES (?, ?)", (name, value))


class _Transaction:
    """`with` block that runs BEGIN IMMEDIATE ... COMMIT (ROLLBACK on error) on an autocommit connection.

    Blocks nest: only the outermost one begins and commits, so a service operation that saves several
    resources is one transaction however many `save` calls it makes.
    """

    def __init__(self, store: Store) -> None:
        self._store = store

    def __enter__(self) -> None:
        store = self._store
        if store._depth == 0:
            store._db.execute("BEGIN IMMEDIATE")
        store._depth += 1

    def __exit__(self, exc_type: object, exc: object, tb: object) -> None:
        store = self._store
        store._depth -= 1
        if store._depth == 0:
            store._db.execute("ROLLBACK" if exc_type else "COMMIT")


_COLUMNS: dict[type[Resource], tuple[tuple[str, ...], tuple[Any, ...]]] = {}


def _columns(model: type[Resource]) -> tuple[tuple[str, ...], tuple[Any, ...]]:
    """A model's column names and their type hints (worked out once per model: `get_type_hints` is slow)."""
    columns = _COLUMNS.get(model)
    if columns is None:
        fields = dataclasses.fields(model)
        hints = typing.get_type_hints(model)
        columns = _COLUMNS[model] = (tuple(f.name for f in fields), tuple(hints[f.name] for f in fields))
    return columns


def _to_column(value: Any) -> Any:
    if isinstance(value, enum.Enum):
        return value.value
    if isinstance(value, (list, dict)):
        return json.dumps(value, separators=(",", ":"))
    return value


def _from_column(hint: Any, value: Any) -> Any:
    origin = typing.get_origin(hint) or hint
    if origin in (list, dict):
        return json.loads(value)
    if isinstance(origin, type) and issubclass(origin, enum.Enum):
        return origin(value)
    if origin is bool:
        return bool(value)
    return value
