"""A psycopg cursor that describes its result's columns only when someone reads the description.

psycopg builds a `Column` object per result column every time `cursor.description` is read, and
SQLAlchemy reads it after every SELECT, only to check that there is a result: once a statement
has run, SQLAlchemy keeps its result's column map on the cached compiled statement and never
looks at the description again. Building those lists (the order page's joined read has dozens
of columns) was 2.8 % of a purchase's instructions (`bench/instructions.py`). Wired in by
`app.backends.configure_backends` for PostgreSQL only.
"""
from __future__ import annotations

from collections.abc import Iterator, Sequence

import psycopg
from psycopg import pq
from psycopg._column import Column

_TUPLE_STATUSES = frozenset({pq.ExecStatus.TUPLES_OK, pq.ExecStatus.SINGLE_TUPLE, pq.ExecStatus.TUPLES_CHUNK})


class _ResultSnapshot:
    """What `Column` reads from a cursor, kept from the moment the description was asked for."""

    __slots__ = ("_encoding", "adapters", "pgresult")

    def __init__(self, cursor: psycopg.Cursor):
        self.pgresult = cursor.pgresult
        self._encoding = cursor._encoding
        self.adapters = cursor.adapters


class LazyDescription(Sequence):
    """The same columns as psycopg's `description` list, built on first access to any of them."""

    __slots__ = ("_columns", "_length", "_snapshot")

    def __init__(self, cursor: psycopg.Cursor, length: int):
        self._snapshot = _ResultSnapshot(cursor)  # the cursor may run another statement later
        self._length = length
        self._columns: list[Column] | None = None

    def _built(self) -> list[Column]:
        if self._columns is None:
            self._columns = [Column(self._snapshot, index) for index in range(self._length)]
        return self._columns

    def __len__(self) -> int:
        return self._length

    def __getitem__(self, index):
        return self._built()[index]

    def __iter__(self) -> Iterator[Column]:
        return iter(self._built())

    def __repr__(self) -> str:
        return repr(self._built())


class LazyDescriptionCursor(psycopg.Cursor):
    @property
    def description(self) -> LazyDescription | None:
        result = self.pgresult
        # The same test as psycopg's own property: columns, or a statement that returned tuples.
        if result and (result.nfields or result.status in _TUPLE_STATUSES):
            return LazyDescription(self, result.nfields)
        return None
