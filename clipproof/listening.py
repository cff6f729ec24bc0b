"""Running an ASGI app (the service, the manifest store's resolver) with uvicorn on a socket
bound first: a port that is taken, an address that is not this machine's or a name that does
not resolve is then one line and exit code 69 (``ListenError``) before anything claims to be
serving, where uvicorn alone logged a traceback or exited 3 after "serving on" had been said.
"""
from __future__ import annotations

import socket
import sys

from clipproof.errors import ListenError, UsageError, os_reason


def listen(host: str, port: int) -> socket.socket:
    """A TCP socket bound to ``host``:``port`` (0: any free port), ready for uvicorn."""
    if not 0 <= port <= 65535:
        raise UsageError(f"--port must be 0..65535, got {port}")
    try:
        family, kind, proto, _, address = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM,
                                                             flags=socket.AI_PASSIVE)[0]
    except socket.gaierror as e:
        raise ListenError(f"cannot listen on {host}:{port} ({e.strerror.lower()})") from None
    sock = socket.socket(family, kind, proto)
    try:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)   # a restart need not wait out TIME_WAIT
        sock.bind(address)
        sock.listen(2048)
    except OSError as e:
        sock.close()
        raise ListenError(f"cannot listen on {host}:{port} ({os_reason(e)})") from None
    return sock


def serve(app, sock: socket.socket, announce: str, **options) -> None:
    """Serve ``app`` on ``sock`` until interrupted, once ``announce`` (formatted with ``url``,
    the address actually bound) is said on stderr."""
    import uvicorn
    host, port = sock.getsockname()[:2]
    url = f"http://{f'[{host}]' if ':' in host else host}:{port}"
    print(announce.format(url=url), file=sys.stderr, flush=True)
    config = uvicorn.Config(app, log_level="warning", **options)
    uvicorn.Server(config).run(sockets=[sock])
