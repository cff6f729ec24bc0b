"""The C2PA Soft Binding Resolution API over a manifest store, as an ASGI app (FastAPI).

    GET /matches/byBinding?alg=ALG&value=VALUE  → {"matches": [{"manifestId", …}]}
    GET /manifests/{manifestId}                  → the manifest store (application/c2pa)
    GET /healthz

Each match also carries clipproof's extensions (``format``, ``assetSha256``, ``fingerprint``),
which ``RemoteStore`` reads to check a recovered clip against the original. ``clipproof store
serve`` runs it with uvicorn (loopback by default).
"""
from __future__ import annotations

from clipproof.provenance.store import SqliteStore


def create_app(store: SqliteStore):
    from fastapi import FastAPI, HTTPException, Response

    app = FastAPI(title="clipproof manifest store", version="1",
                  description="C2PA Soft Binding Resolution API over a clipproof manifest store")

    @app.get("/healthz")
    def healthz() -> dict:
        return {"ok": True, "manifests": store.count()}

    @app.get("/matches/byBinding")
    def matches_by_binding(alg: str, value: str) -> dict:
        return {"matches": [{"manifestId": m.manifest_id, "format": m.format, "assetSha256": m.asset_sha256,
                             "fingerprint": m.fingerprint} for m in store.by_binding(alg, value)]}

    @app.get("/manifests/{manifest_id:path}")
    def manifest(manifest_id: str) -> Response:
        found = store.manifest(manifest_id)
        if found is None:
            raise HTTPException(status_code=404, detail="no such manifest")
        return Response(content=found.manifest_store, media_type="application/c2pa")

    return app


def serve(store: SqliteStore, host: str = "127.0.0.1", port: int = 8765) -> None:
    from clipproof import listening
    with listening.listen(host, port) as sock:
        listening.serve(create_app(store), sock, f"serving {store.location} on {{url}} (Ctrl-C stops)")
