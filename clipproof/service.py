"""``clipproof serve``: the HTTP API for moderation pipelines (FastAPI on uvicorn).

    POST /v1/verify        body: the clip's bytes (any content type but JSON), the one file of
                           a multipart form (curl -F clip=@clip.mp4), or JSON
                           {"path": "..."} naming a file under an allowed root
                           → the ``verify --json`` object (schema clipproof.report/1)
    POST /v1/report        the same body → {"report": that object, "html": the report page}
    GET  /                 the verification desk: a page to drop clips on (or name a path)
    GET  /healthz          → {"ok": true, "version", "detector", "watermark", "stores"}
    GET  /docs, /openapi.json

One ``Verifier`` (trust anchors, detector weights, stores) is loaded at start and shared by
every request. Uploads stream to a temporary file, never held in memory, and are removed when
the request ends, whatever happens. Errors: a missing or wrong bearer token → 401; an upload
over ``max_upload_bytes`` → 413; a file that is not a readable video or image → 422 with the
same error object as the CLI (``kind``, ``exit_code``, ``message``); a path outside the
allowed roots (``..`` or a symlink that leads out included) → 403; a verification past
``timeout_s`` → 504; more than ``concurrency`` at once wait their turn.
"""
from __future__ import annotations

import asyncio
import dataclasses
import hmac
import shutil
import tempfile
import threading
import urllib.parse
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from fastapi import FastAPI, Request    # at module level: FastAPI resolves the handlers' annotations here
from fastapi.responses import HTMLResponse, JSONResponse
from python_multipart.exceptions import MultipartParseError
from python_multipart.multipart import MultipartParser, parse_options_header

from clipproof.errors import ClipproofError, check_settings, os_reason
from clipproof.version import __version__

DESK_PAGE = Path(__file__).parent / "static" / "desk.html"


@dataclass(frozen=True)
class ServiceSettings:
    host: str = "127.0.0.1"
    port: int = 8080
    token: str | None = None                 # bearer token every request must carry
    max_upload_bytes: int = 512 << 20
    timeout_s: float = 60.0
    concurrency: int = 2
    allowed_roots: tuple[str, ...] = ()      # folders whose files may be named by path
    trust: tuple[str, ...] = ()
    detector: Any = "auto"
    watermark: bool = True
    stores: tuple[str, ...] | None = None

    def __post_init__(self):
        check_settings({
            "--max-upload-mb must be at least 1": self.max_upload_bytes >= 1 << 20,
            "--timeout must be above 0 seconds": self.timeout_s > 0,
            "--concurrency must be at least 1": self.concurrency >= 1,
            # "" binds every interface, and an empty root is the working folder.
            "--host must name an address (empty: every interface)": bool(self.host),
            "an --allow folder must be named (empty: the working folder)": all(map(str, self.allowed_roots)),
        })


# HTTP status for each error kind (the body carries the CLI's kind and exit code).
_STATUS = {"invalid-media": 422, "decode-limit": 422, "missing": 404, "usage": 400}


def create_app(settings: ServiceSettings, verifier=None):
    from clipproof.provenance.report import error_record
    from clipproof.verification import Verifier

    verifier = verifier or Verifier(trust=list(settings.trust), detector=settings.detector,
                                    watermark=settings.watermark, stores=settings.stores)
    roots = [Path(r).resolve() for r in settings.allowed_roots]
    slots = threading.BoundedSemaphore(settings.concurrency)
    app = FastAPI(title="clipproof", version=__version__,
                  description="Where did this clip come from? Content Credentials, watermark and detector.")

    def error(status: int, kind: str, message: str, path: str = "-") -> JSONResponse:
        body = {"schema": "clipproof.report/1", "path": path,
                "error": {"exit_code": None, "kind": kind, "message": message}}
        headers = {"WWW-Authenticate": "Bearer"} if status == 401 else None
        return JSONResponse(body, status_code=status, headers=headers)

    def authorised(request: Request) -> bool:
        if settings.token is None:
            return True
        given = request.headers.get("authorization", "")
        return hmac.compare_digest(given.encode(), f"Bearer {settings.token}".encode())

    @app.get("/healthz")
    def healthz() -> dict:
        return {"ok": True, "version": __version__, "detector": verifier.detector is not None,
                "watermark": verifier.watermark, "stores": [s.location for s in verifier.stores]}

    @app.get("/", include_in_schema=False)
    def desk() -> HTMLResponse:
        return HTMLResponse(DESK_PAGE.read_text(encoding="utf-8"))

    @app.post("/v1/verify")
    async def verify(request: Request):
        return await _verify(request, html=False)

    @app.post("/v1/report")
    async def report(request: Request):
        return await _verify(request, html=True)

    async def _verify(request: Request, html: bool):
        if not authorised(request):
            return error(401, "unauthorised", "a valid bearer token is required")
        if request.headers.get("content-type", "").split(";")[0].strip() == "application/json":
            try:
                named = (await request.json())["path"]
                if not isinstance(named, str) or not named:
                    raise TypeError("not a path")
                path = _inside(Path(named), roots)
            except PermissionError as e:
                return error(403, "forbidden", str(e))
            except (ValueError, KeyError, TypeError):
                return error(400, "usage", 'a JSON body must be {"path": "..."}, the path a non-empty string')
            return await _run(path, named, None, html)
        declared = request.headers.get("content-length")
        if declared and declared.isdigit() and int(declared) > settings.max_upload_bytes:
            return error(413, "too-large", f"uploads are limited to {settings.max_upload_bytes} bytes")
        content_type, options = parse_options_header(request.headers.get("content-type"))
        folder = tempfile.mkdtemp(prefix="clipproof-upload-")
        handed_over = False             # to _run, which removes the folder when it is done
        try:
            upload = Path(folder) / "upload"
            size = 0
            with open(upload, "wb") as f:
                form = _FormFile(options.get(b"boundary", b""), f) if content_type == b"multipart/form-data" else None
                write = form.write if form else f.write
                async for chunk in request.stream():
                    size += len(chunk)
                    if size > settings.max_upload_bytes:
                        return error(413, "too-large", f"uploads are limited to {settings.max_upload_bytes} bytes")
                    write(chunk)
                refused = form.finish() if form else None
            if refused:
                return error(400, "usage", refused)
            if upload.stat().st_size == 0:
                return error(422, "invalid-media", "empty upload")
            handed_over = True
        except OSError as e:        # the temporary folder is full (or gone): the server's fault, said so
            return error(507, "storage", f"the service cannot keep the upload ({os_reason(e)})")
        finally:
            if not handed_over:
                shutil.rmtree(folder, ignore_errors=True)
        name = form.filename if form and form.filename else urllib.parse.unquote(request.headers.get("x-filename", "upload"))
        return await _run(upload, name, folder, html)

    async def _run(path: Path, name: str, cleanup: str | None, html: bool = False):
        """Verify in a worker thread, at most ``concurrency`` at once; past the timeout, answer
        504 and let the thread finish (and clean up) on its own."""
        done: asyncio.Future = asyncio.get_running_loop().create_future()
        loop = asyncio.get_running_loop()

        def work() -> None:
            try:
                with slots:
                    result: Any = verifier.verify(path)
                    if html:
                        # The page is made while the upload still exists (keyframes are read from it).
                        from clipproof.html_report import render_page
                        from clipproof.verification import Outcome
                        shown = dataclasses.replace(result, path=name)
                        result = (result, render_page([Outcome(name, shown, None)], thumbnails_from=path))
            except ClipproofError as e:
                result = e
            except Exception as e:  # a bug: that request's 500, the service goes on
                result = ClipproofError(f"internal error (a bug): {type(e).__name__}: {e}", path=name)
            finally:
                if cleanup:
                    shutil.rmtree(cleanup, ignore_errors=True)
            loop.call_soon_threadsafe(lambda: done.done() or done.set_result(result))

        threading.Thread(target=work, daemon=True, name="clipproof-verify").start()
        try:
            result = await asyncio.wait_for(asyncio.shield(done), settings.timeout_s)
        except asyncio.TimeoutError:
            return error(504, "timeout", f"verification took longer than {settings.timeout_s:g} s", name)
        if isinstance(result, ClipproofError):
            record = error_record(name, type(result)(result.reason, path=name) if result.path else result)
            return JSONResponse(record, status_code=_STATUS.get(result.kind, 500))
        report, page = result if html else (result, None)
        row = report.to_dict()
        row["path"] = name
        return JSONResponse({"report": row, "html": page} if html else row)

    return app


class _FormFile:
    """The one file of a multipart/form-data upload (`curl -F clip=@clip.mp4`, a browser's form),
    streamed into ``out`` as it arrives; other fields are read past. Before, the whole form —
    boundaries, headers and all — was taken for the clip: "not a readable video"."""

    def __init__(self, boundary: bytes, out):
        self.out, self.filename, self.files = out, None, 0
        self.error = None if boundary else "a multipart upload needs a boundary in its Content-Type"
        self._field, self._value, self._headers, self._writing = b"", b"", {}, False
        self._parser = MultipartParser(boundary, {
            "on_part_begin": self._part_begin, "on_header_field": self._header_field,
            "on_header_value": self._header_value, "on_header_end": self._header_end,
            "on_headers_finished": self._headers_finished, "on_part_data": self._part_data,
            "on_part_end": self._part_end}) if boundary else None

    def write(self, chunk: bytes) -> None:
        if self.error is None:
            try:
                self._parser.write(chunk)
            except MultipartParseError as e:
                self.error = f"not a well-formed multipart form ({e})"

    def finish(self) -> str | None:
        """Why the form cannot be verified, or None."""
        if self.error is None:
            try:
                self._parser.finalize()
            except MultipartParseError as e:
                self.error = f"not a well-formed multipart form ({e})"
        if self.error is None and self.files != 1:
            self.error = ("a multipart upload needs one file part (curl -F clip=@clip.mp4)" if not self.files
                          else f"one clip per request: the form holds {self.files} files")
        return self.error

    def _part_begin(self) -> None:
        self._headers = {}

    def _header_field(self, data: bytes, start: int, end: int) -> None:
        self._field += data[start:end]

    def _header_value(self, data: bytes, start: int, end: int) -> None:
        self._value += data[start:end]

    def _header_end(self) -> None:
        self._headers[self._field.lower()] = self._value
        self._field, self._value = b"", b""

    def _headers_finished(self) -> None:
        _, params = parse_options_header(self._headers.get(b"content-disposition", b""))
        if b"filename" in params:
            self.files += 1
            self._writing = self.files == 1
            if self._writing:
                self.filename = params[b"filename"].decode("utf-8", "replace") or None

    def _part_data(self, data: bytes, start: int, end: int) -> None:
        if self._writing:
            self.out.write(data[start:end])

    def _part_end(self) -> None:
        self._writing = False


def _inside(path: Path, roots: list[Path]) -> Path:
    """``path`` resolved (symlinks followed) if it lies under one of ``roots``; else
    PermissionError. With no roots configured, no path is allowed."""
    if not roots:
        raise PermissionError("this service verifies uploads only: no folder is open to paths")
    if ".." in path.parts:
        raise PermissionError("paths with '..' are refused")
    if not path.is_absolute():
        # Relative to the allowed folders (the first that holds it), never to the service's own
        # working folder, which the caller cannot see.
        under = [root / path for root in roots]
        path = next((p for p in under if p.exists()), under[0])
    real = path.resolve()
    if not any(real == r or r in real.parents for r in roots):
        raise PermissionError("the path is outside the folders this service may read")
    return real


def serve(settings: ServiceSettings) -> None:
    from clipproof import listening
    sock = listening.listen(settings.host, settings.port)     # before the weights: a taken port fails fast
    with sock:
        listening.serve(create_app(settings), sock, f"clipproof {__version__} serving on {{url}} (docs at /docs; Ctrl-C stops)",
                        limit_concurrency=max(64, settings.concurrency * 16))

