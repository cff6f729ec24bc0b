"""`clipproof serve` on loopback: good, oversize, hostile, unauthorised and path requests."""
from __future__ import annotations

import hashlib
import json
import os
import time
import urllib.error
import urllib.request
from pathlib import Path

import pytest

from clipproof.service import ServiceSettings, create_app
from tests.conftest import serving

TOKEN = "s3cret-token"


@pytest.fixture(scope="module")
def service(tmp_path_factory, keys):
    root = tmp_path_factory.mktemp("allowed")
    settings = ServiceSettings(token=TOKEN, max_upload_bytes=2 << 20, timeout_s=20, allowed_roots=(str(root),),
                               trust=(str(keys.root),), detector=None, stores=())
    with serving(create_app(settings)) as url:
        yield url, root


def call(url: str, data: bytes | None = None, *, token: str | None = TOKEN, json_body: dict | None = None,
         method: str = "POST") -> tuple[int, dict]:
    headers = {}
    if token:
        headers["Authorization"] = f"Bearer {token}"
    if json_body is not None:
        data, headers["Content-Type"] = json.dumps(json_body).encode(), "application/json"
    elif data is not None:
        headers["Content-Type"] = "video/mp4"
    request = urllib.request.Request(url, data=data, headers=headers, method=method if data is not None else "GET")
    try:
        with urllib.request.urlopen(request, timeout=30) as r:
            return r.status, json.loads(r.read())
    except urllib.error.HTTPError as e:
        return e.code, json.loads(e.read() or b"{}")


def _uploads_left() -> list[str]:
    import tempfile
    return [p for p in os.listdir(tempfile.gettempdir()) if p.startswith("clipproof-upload-")]


def test_health_and_docs(service):
    url, _ = service
    status, body = call(f"{url}/healthz", token=None)
    assert status == 200 and body["ok"] and body["detector"] is False
    status, spec = call(f"{url}/openapi.json", token=None)
    assert status == 200 and "/v1/verify" in spec["paths"]


def test_an_upload_gets_the_cli_report(service, ai_clip, keys):
    url, _ = service
    from clipproof import verify
    status, body = call(f"{url}/v1/verify", ai_clip.read_bytes())
    assert status == 200 and body["schema"] == "clipproof.report/1"
    expected = verify(ai_clip, trust=keys.root, detector=None).to_dict()
    assert body["verdict"] == expected["verdict"] == "ai-generated-declared"
    assert body["sha256"] == expected["sha256"] and body["exit_code"] == 1
    assert not _uploads_left()


def _form(*parts: tuple[str, str | None, bytes], boundary: str = "cl1pPr00f") -> tuple[bytes, str]:
    """A multipart/form-data body of (field, filename or None, content) parts, as curl -F makes it."""
    body = b""
    for field, filename, content in parts:
        disposition = f'form-data; name="{field}"' + (f'; filename="{filename}"' if filename else "")
        body += f"--{boundary}\r\nContent-Disposition: {disposition}\r\n\r\n".encode() + content + b"\r\n"
    return body + f"--{boundary}--\r\n".encode(), f"multipart/form-data; boundary={boundary}"


def test_a_form_upload_gets_the_same_report(service, ai_clip):
    """`curl -F clip=@clip.mp4` posts a multipart form: its whole body (boundaries and headers
    included) was taken for the clip, "not a readable video"."""
    url, _ = service

    def post(body: bytes, content_type: str) -> tuple[int, dict]:
        request = urllib.request.Request(f"{url}/v1/verify", data=body, method="POST",
                                         headers={"Authorization": f"Bearer {TOKEN}", "Content-Type": content_type})
        try:
            with urllib.request.urlopen(request, timeout=30) as r:
                return r.status, json.loads(r.read())
        except urllib.error.HTTPError as e:
            return e.code, json.loads(e.read())
    clip = ai_clip.read_bytes()
    status, body = post(*_form(("note", None, b"desk B"), ("clip", "ai.mp4", clip)))
    assert status == 200 and body["path"] == "ai.mp4" and body["verdict"] == "ai-generated-declared"
    assert body["sha256"] == hashlib.sha256(clip).hexdigest()
    for form, said in ((_form(("note", None, b"no file")), "needs one file part"),
                       (_form(("a", "a.mp4", clip), ("b", "b.mp4", clip)), "one clip per request"),
                       ((b"garbage", "multipart/form-data; boundary=x"), "not a well-formed multipart form")):
        status, body = post(*form)
        assert status == 400 and said in body["error"]["message"], body
    assert not _uploads_left()


def test_a_full_temporary_folder_is_a_507(service, ai_clip, tmp_path, monkeypatch):
    """The upload's file is /dev/full here: every write fails as on a full disk. It was a 500
    with an internal error; the folder is removed either way."""
    import tempfile
    url, _ = service
    made = []

    def full_folder(prefix: str = "") -> str:
        folder = tmp_path / f"{prefix}{len(made)}"
        folder.mkdir()
        (folder / "upload").symlink_to("/dev/full")
        made.append(folder)
        return str(folder)
    monkeypatch.setattr(tempfile, "mkdtemp", full_folder)
    status, body = call(f"{url}/v1/verify", ai_clip.read_bytes())
    assert status == 507 and body["error"] == {"exit_code": None, "kind": "storage",
                                               "message": "the service cannot keep the upload (no space left on device)"}
    assert made and not any(f.exists() for f in made)


def test_refusals(service, ai_clip, tmp_path):
    url, root = service
    assert call(f"{url}/v1/verify", ai_clip.read_bytes(), token=None)[0] == 401
    assert call(f"{url}/v1/verify", ai_clip.read_bytes(), token="wrong")[0] == 401
    status, body = _post_oversize(url, 3 << 20, declare=True)
    assert status == 413 and body["error"]["kind"] == "too-large"
    status, body = _post_oversize(url, 3 << 20, declare=False)      # chunked: no length to refuse up front
    assert status == 413 and body["error"]["kind"] == "too-large"
    status, body = call(f"{url}/v1/verify", b"not a video at all, just text" * 10)
    assert status == 422 and body["error"]["kind"] == "invalid-media" and body["exit_code"] == 65
    truncated = ai_clip.read_bytes()[:3000]
    assert call(f"{url}/v1/verify", truncated)[0] in (200, 422)
    assert not _uploads_left()


def _post_oversize(url: str, size: int, *, declare: bool) -> tuple[int, dict]:
    """Send a body the server will refuse part-way: it may answer before reading it all, so the
    rest is sent as far as the connection allows, then the answer read."""
    import http.client
    host, port = url.split("//")[1].split(":")
    conn = http.client.HTTPConnection(host, int(port), timeout=30)
    conn.putrequest("POST", "/v1/verify")
    conn.putheader("Authorization", f"Bearer {TOKEN}")
    conn.putheader("Content-Type", "video/mp4")
    if declare:
        conn.putheader("Content-Length", str(size))
    else:
        conn.putheader("Transfer-Encoding", "chunked")
    conn.endheaders()
    chunk = b"x" * (256 << 10)
    try:
        for _ in range(size // len(chunk)):
            conn.send(chunk if declare else b"%x\r\n%s\r\n" % (len(chunk), chunk))
        if not declare:
            conn.send(b"0\r\n\r\n")
    except OSError:
        pass
    response = conn.getresponse()
    return response.status, json.loads(response.read() or b"{}")


def test_paths_only_under_allowed_roots(service, ai_clip, tmp_path):
    url, root = service
    inside = root / "clip.mp4"
    inside.write_bytes(ai_clip.read_bytes())
    status, body = call(f"{url}/v1/verify", json_body={"path": str(inside)})
    assert status == 200 and body["verdict"] == "ai-generated-declared" and body["path"] == str(inside)
    outside = tmp_path / "secret.mp4"
    outside.write_bytes(ai_clip.read_bytes())
    (root / "link.mp4").symlink_to(outside)
    for named in (str(outside), str(root / ".." / outside.parent.name / "secret.mp4"), str(root / "link.mp4")):
        status, body = call(f"{url}/v1/verify", json_body={"path": named})
        assert status == 403 and body["error"]["kind"] == "forbidden", named
    assert call(f"{url}/v1/verify", json_body={"path": str(root / "gone.mp4")})[0] == 404
    # A relative path is under the allowed folders, not the service's working folder.
    status, body = call(f"{url}/v1/verify", json_body={"path": "clip.mp4"})
    assert status == 200 and body["sha256"] == hashlib.sha256(ai_clip.read_bytes()).hexdigest() and body["path"] == "clip.mp4"
    # Not a path: 400 (null and 123 were looked up as files named "None" and "123"; "" as the folder).
    for bad in ({"nope": 1}, {"path": None}, {"path": 123}, {"path": ""}, ["clip.mp4"]):
        status, body = call(f"{url}/v1/verify", json_body=bad)
        assert status == 400 and body["error"]["kind"] == "usage", bad


def test_hostile_files_get_their_error_kinds(service, ai_clip, tmp_path):
    url, _ = service
    from tests.hostile import crafted
    for case in crafted(tmp_path, ai_clip, flood=20_000):
        status, body = call(f"{url}/v1/verify", case.path.read_bytes())
        assert status in (200, 422), (case.name, status, body)
        assert body.get("exit_code") != 70 and (status == 200) == ("error" not in body), case.name
    assert not _uploads_left()


def test_a_slow_verification_times_out(tmp_path, ai_clip):
    """504 past the timeout, and the upload is still removed once the work ends."""
    class Slow:
        detector, watermark, stores = None, False, []

        def verify(self, path):
            time.sleep(2)
            raise FileNotFoundError(path)

    with serving(create_app(ServiceSettings(timeout_s=0.5, detector=None), verifier=Slow())) as url:
        status, body = call(f"{url}/v1/verify", ai_clip.read_bytes(), token=None)
        assert status == 504 and body["error"]["kind"] == "timeout"
        time.sleep(2.5)
        assert not _uploads_left()


CHROMEDRIVER = __import__("shutil").which("chromedriver")


@pytest.mark.slow
@pytest.mark.skipif(CHROMEDRIVER is None, reason="Debian's chromium-driver is not installed (apt-get install chromium-driver)")
def test_the_desk_page_verifies_a_dropped_file(tmp_path, ai_clip, capture_clip, keys, monkeypatch):
    """Headless chromium (Debian's, driven by Selenium with Debian's chromedriver): the page loads
    with no console errors, a chosen file and a dropped one come back with their verdicts."""
    webdriver = pytest.importorskip("selenium.webdriver")
    from selenium.webdriver.chrome.service import Service
    monkeypatch.setenv("SE_OFFLINE", "true")          # Selenium Manager must not look for a driver online
    settings = ServiceSettings(trust=(str(keys.root),), detector=None, stores=())
    options = webdriver.ChromeOptions()
    for flag in ("--headless=new", "--no-sandbox", "--disable-gpu", "--proxy-server=127.0.0.1:9",
                 "--proxy-bypass-list=127.0.0.1"):
        options.add_argument(flag)
    options.binary_location = __import__("shutil").which("chromium") or "/usr/bin/chromium"
    options.set_capability("goog:loggingPrefs", {"browser": "ALL"})
    driver = webdriver.Chrome(service=Service(CHROMEDRIVER), options=options)
    try:
        with serving(create_app(settings)) as url:
            _use_desk(driver, url, ai_clip, capture_clip, tmp_path)
    finally:
        driver.quit()
    assert not _uploads_left()


def _use_desk(driver, url: str, ai_clip: Path, capture_clip: Path, tmp_path: Path) -> None:
    import base64

    from selenium.webdriver.common.by import By
    from selenium.webdriver.support.ui import WebDriverWait

    from clipproof.media import remux
    driver.get(f"{url}/")
    assert "Verification desk" in driver.page_source
    driver.find_element(By.ID, "files").send_keys(str(ai_clip))
    wait = WebDriverWait(driver, 60)
    wait.until(lambda d: len(d.find_elements(By.CSS_SELECTOR, "#results li")) == 1)
    first = driver.find_element(By.CSS_SELECTOR, "#results li").text
    assert "ai-generated-declared" in first and "download HTML" in first
    report = driver.find_element(By.ID, "report").get_attribute("srcdoc")
    assert "AI-generated, by its own declaration" in report and "data:image/jpeg;base64," in report
    # Drops, as the browser delivers them (a DragEvent carrying Files): the stripped copy of a
    # capture, and a file that is not a video.
    drop = """
        const files = arguments[0].map(([name, b64]) => new File([Uint8Array.from(atob(b64), c => c.charCodeAt(0))],
                                                                 name, {type: "video/mp4"}));
        const data = new DataTransfer(); files.forEach((f) => data.items.add(f));
        document.getElementById("drop").dispatchEvent(new DragEvent("drop", {dataTransfer: data, bubbles: true}));"""
    stripped = remux(capture_clip, tmp_path / "stripped.mp4")
    driver.execute_script(drop, [["stripped.mp4", base64.b64encode(stripped.read_bytes()).decode()],
                                 ["junk.mp4", base64.b64encode(b"12345678").decode()]])
    wait.until(lambda d: len(d.find_elements(By.CSS_SELECTOR, "#results li")) == 3)
    second, third = [li.text for li in driver.find_elements(By.CSS_SELECTOR, "#results li")[1:]]
    assert "stripped.mp4" in second and "uncertain" in second and "download JSON" in second
    assert "junk.mp4" in third and "invalid-media" in third
    # The status line is set once the last result is on the page: wait for it, then read it.
    wait.until(lambda d: d.find_element(By.ID, "status").text.startswith("Done"))
    assert driver.find_element(By.ID, "status").text == "Done: 2 files verified."
    errors = [e for e in driver.get_log("browser") if e["level"] == "SEVERE" and "/v1/report" not in e["message"]]
    assert errors == []


def test_serve_says_where_it_listens_or_why_it_cannot(tmp_path):
    """A taken port, a bad one or bad limits are one line and a documented code before anything
    claims to be serving (uvicorn alone exited 3, or logged a traceback, after "serving on");
    port 0 serves on a free port and says which."""
    import socket
    import subprocess
    import sys

    from tests.conftest import run_cli
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        out = run_cli("clipproof", "serve", "--no-detector", "--port", str(port))
        assert (out.returncode, out.stderr) == (69, f"clipproof serve: cannot listen on 127.0.0.1:{port} (address already in use)\n")
    for args, message in ((["--port", "70000"], "--port must be 0..65535, got 70000"),
                          (["--max-upload-mb", "0"], "--max-upload-mb must be at least 1"),
                          (["--concurrency", "0"], "--concurrency must be at least 1")):
        out = run_cli("clipproof", "serve", "--no-detector", *args)
        assert (out.returncode, out.stderr) == (64, f"clipproof serve: {message}\n")
    proc = subprocess.Popen([sys.executable, "-m", "clipproof.cli", "serve", "--no-detector", "--port", "0"],
                            stderr=subprocess.PIPE, text=True)
    try:
        line = proc.stderr.readline()
        assert line.startswith("clipproof ") and " serving on http://127.0.0.1:" in line, line
        url = line.split(" serving on ")[1].split()[0]
        assert int(url.rsplit(":", 1)[1]) > 0
        status, body = call(f"{url}/healthz", token=None)
        assert status == 200 and body["ok"] is True
    finally:
        proc.terminate()
        proc.wait(20)
