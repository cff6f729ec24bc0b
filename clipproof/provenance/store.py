"""Manifest stores: where a signed clip's manifest is kept so a stripped copy can find it again.

Signing writes the manifest store (the JUMBF bytes c2pa-python signed), the asset's sha256, the
soft-binding value (the watermark's payload) and a content fingerprint into a store; ``verify``
looks a recovered watermark up in one or more stores.

- ``SqliteStore``: a file (default ``$XDG_DATA_HOME/clipproof/manifests.sqlite``). Write-ahead
  logging and a busy timeout let several processes sign at once; each entry is one transaction,
  so a crash never loses entries already written.
- ``RemoteStore``: a server speaking the C2PA Soft Binding Resolution API
  (``GET /matches/byBinding?alg=&value=``, ``GET /manifests/{id}``), e.g. ``clipproof store
  serve`` (``clipproof.provenance.resolver``). Requests time out after ``REMOTE_TIMEOUT_S``.

``open_store("https://…")`` or ``open_store(path)`` picks the kind.
"""
from __future__ import annotations

import contextlib
import datetime as dt
import json
import os
import sqlite3
import urllib.parse
from dataclasses import dataclass, field
from pathlib import Path
from typing import Iterator, Protocol

from clipproof.errors import StoreError, UsageError, one_line
from clipproof.user_dirs import data_home

REMOTE_TIMEOUT_S = 4.0
BUSY_TIMEOUT_S = 15.0
_SCHEMA = """
CREATE TABLE IF NOT EXISTS manifests (
    manifest_id    TEXT PRIMARY KEY,
    alg            TEXT NOT NULL,
    binding        TEXT NOT NULL,
    manifest_store BLOB NOT NULL,
    format         TEXT NOT NULL,
    asset_sha256   TEXT NOT NULL,
    fingerprint    TEXT NOT NULL,
    created        TEXT NOT NULL
);
CREATE INDEX IF NOT EXISTS manifests_by_binding ON manifests (alg, binding);
"""


@dataclass(frozen=True)
class StoredManifest:
    manifest_id: str              # the active manifest's label (urn:c2pa:…)
    alg: str                      # soft-binding algorithm
    binding: str                  # its value (the watermark payload, hex)
    manifest_store: bytes         # as signed (application/c2pa)
    format: str                   # the asset's MIME type
    asset_sha256: str
    fingerprint: list[int] = field(default_factory=list)
    created: str = ""


class ManifestStore(Protocol):
    location: str

    def put(self, entry: StoredManifest) -> None: ...
    def by_binding(self, alg: str, value: str) -> list[StoredManifest]: ...


def default_store_path() -> Path:
    return data_home() / "manifests.sqlite"


def open_store(where: str | os.PathLike | None = None, *, create: bool = True) -> ManifestStore:
    """A store by location: an http(s) URL (remote) or a path (SQLite; default path if None;
    made on first write unless ``create`` is false)."""
    text = os.fspath(where) if where is not None else None
    if text == "":     # None is the default store; an empty name is a mistake (an unset variable)
        raise UsageError("an empty --store names no store (an unset variable?)")
    if text and text.startswith(("http://", "https://")):
        return RemoteStore(text)
    return SqliteStore(text or default_store_path(), create=create)


class SqliteStore:
    """A manifest repository in one SQLite file, safe for several processes at once."""

    def __init__(self, path: str | os.PathLike, *, create: bool = True):
        self.path = Path(path)
        self.location = str(self.path)
        self._create = create

    def _connect(self) -> sqlite3.Connection:
        if not self.path.exists() and not self._create:
            raise StoreError("no manifest store here", path=self.path)
        try:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            db = sqlite3.connect(self.path, timeout=BUSY_TIMEOUT_S, isolation_level=None)
            db.execute("PRAGMA journal_mode=WAL")
            db.execute("PRAGMA synchronous=NORMAL")   # with WAL: durable at each checkpoint, never corrupt
            db.executescript(_SCHEMA)
            return db
        except (sqlite3.DatabaseError, OSError) as e:
            raise _store_error(self.path, e) from None

    @contextlib.contextmanager
    def _session(self) -> Iterator[sqlite3.Connection]:
        """A connection for one operation: closed after it, a database error as a StoreError."""
        db = self._connect()
        try:
            yield db
        except sqlite3.DatabaseError as e:
            raise _store_error(self.path, e) from None
        finally:
            db.close()

    def put(self, entry: StoredManifest) -> None:
        with self._session() as db, db:
            db.execute("BEGIN IMMEDIATE")
            db.execute("INSERT OR REPLACE INTO manifests VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
                       (entry.manifest_id, entry.alg, entry.binding, entry.manifest_store, entry.format,
                        entry.asset_sha256, json.dumps(entry.fingerprint),
                        entry.created or dt.datetime.now(dt.timezone.utc).isoformat(timespec="seconds")))

    def by_binding(self, alg: str, value: str) -> list[StoredManifest]:
        return self._select("WHERE alg = ? AND binding = ? ORDER BY created", (alg, value))

    def manifest(self, manifest_id: str) -> StoredManifest | None:
        found = self._select("WHERE manifest_id = ?", (manifest_id,))
        return found[0] if found else None

    def entries(self, limit: int | None = None) -> list[StoredManifest]:
        """The newest ``limit`` entries (every one when None), newest first."""
        return self._select("ORDER BY created DESC, manifest_id" + (" LIMIT ?" if limit else ""),
                            (limit,) if limit else ())

    def lookup(self, key: str, alg: str) -> list[StoredManifest]:
        """The entry whose manifest id is ``key``, else those whose ``alg`` soft binding's value is
        ``key`` (a watermark's payload as ``verify`` prints it)."""
        found = self.manifest(key)
        return [found] if found is not None else self.by_binding(alg, key.strip().lower())

    def count(self) -> int:
        with self._session() as db:
            return int(db.execute("SELECT COUNT(*) FROM manifests").fetchone()[0])

    def _select(self, where: str, args: tuple) -> list[StoredManifest]:
        with self._session() as db:
            rows = db.execute(f"SELECT * FROM manifests {where}", args).fetchall()
        return [StoredManifest(r[0], r[1], r[2], bytes(r[3]), r[4], r[5], json.loads(r[6]), r[7]) for r in rows]


def _store_error(path: Path, e: BaseException) -> StoreError:
    text = one_line(e)
    if "locked" in text or "busy" in text:
        return StoreError(f"the manifest store stayed locked for {BUSY_TIMEOUT_S:g} s ({text})", path=path)
    if isinstance(e, sqlite3.DatabaseError) and ("not a database" in text or "malformed" in text):
        return StoreError(f"not a manifest store, or a corrupt one ({text})", path=path)
    return StoreError(f"cannot use the manifest store ({text})", path=path)


class RemoteStore:
    """A Soft Binding Resolution API server, read-only from here."""

    def __init__(self, url: str, timeout: float = REMOTE_TIMEOUT_S):
        self.location = url.rstrip("/")
        self.timeout = timeout

    def put(self, entry: StoredManifest) -> None:
        raise StoreError("a remote manifest store is read-only from clipproof; sign into a local store and serve it",
                         path=self.location)

    def by_binding(self, alg: str, value: str) -> list[StoredManifest]:
        query = urllib.parse.urlencode({"alg": alg, "value": value})
        matches = json.loads(self._get(f"/matches/byBinding?{query}")).get("matches", [])
        out = []
        for m in matches:
            ident = str(m.get("manifestId", ""))
            data = self._get(f"/manifests/{urllib.parse.quote(ident, safe='')}")
            out.append(StoredManifest(ident, alg, value, data, str(m.get("format", "")), str(m.get("assetSha256", "")),
                                      [int(x) for x in m.get("fingerprint", [])]))
        return out

    def _get(self, path: str) -> bytes:
        # Here, not at the top: every `verify` imports this module, and urllib.request (with
        # http.client and the email parser) took 25 ms of a 0.4 s `verify` of a signed file.
        import urllib.error
        import urllib.request
        try:
            with urllib.request.urlopen(self.location + path, timeout=self.timeout) as response:
                return response.read()
        except urllib.error.HTTPError as e:
            raise StoreError(f"the manifest store answered HTTP {e.code} to {path.split('?')[0]}",
                             path=self.location) from None
        except (urllib.error.URLError, OSError, ValueError) as e:
            reason = getattr(e, "reason", e)
            raise StoreError(f"the manifest store did not answer within {self.timeout:g} s or refused "
                             f"({one_line(reason) if isinstance(reason, BaseException) else reason})",
                             path=self.location) from None
