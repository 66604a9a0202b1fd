"""A threaded stdlib WSGI server for the sandbox, on 127.0.0.1 only.

server = SandboxServer(sandbox).start()   # background thread, a free port
server.url                                # http://127.0.0.1:<port>
server.stop()
"""

from __future__ import annotations

import socketserver
import sys
import threading
from wsgiref.simple_server import WSGIRequestHandler, WSGIServer, make_server

from .app import make_app
from .state import Sandbox


class _ThreadingWSGIServer(socketserver.ThreadingMixIn, WSGIServer):
    # Each request on its own thread: a "slow" fault must not hold up the other callers, and
    # ten concurrent jobs must really be concurrent.
    daemon_threads = True
    block_on_close = False
    allow_reuse_address = True

    def handle_error(self, request, client_address):
        # A client that timed out and hung up is part of the game, not an error.
        if isinstance(sys.exc_info()[1], ConnectionError | TimeoutError):
            return
        super().handle_error(request, client_address)


class _NullStream:
    def write(self, _):
        return 0

    def flush(self):
        pass


class _QuietHandler(WSGIRequestHandler):
    # Requests carry (fake) PII and secrets in query strings: never echo them.
    def log_message(self, format, *args):
        pass

    def get_stderr(self):
        return _NullStream()


class SandboxServer:
    def __init__(
        self, sandbox: Sandbox | None = None, *, host: str = "127.0.0.1", port: int = 0, log=None
    ):
        if host not in ("127.0.0.1", "localhost", "::1"):
            raise ValueError("The sandbox listens on the loopback interface only.")
        self.sandbox = sandbox if sandbox is not None else Sandbox()
        self._httpd = make_server(
            host,
            port,
            make_app(self.sandbox, log=log),
            server_class=_ThreadingWSGIServer,
            handler_class=_QuietHandler,
        )
        self.host = host
        self.port = self._httpd.server_address[1]
        self._thread: threading.Thread | None = None

    @property
    def url(self) -> str:
        return f"http://{self.host}:{self.port}"

    @property
    def urls(self) -> dict[str, str]:
        """The base URLs to configure on channels."""
        return {
            "amazon_endpoint": f"{self.url}/amazon",
            "amazon_lwa_url": f"{self.url}/amazon/auth/o2/token",
            "tiktok_api_base": f"{self.url}/tiktok",
            "tiktok_auth_base": f"{self.url}/tiktok-auth",
            "shopify_api_base": f"{self.url}/shopify/<shop domain>",
            "control": f"{self.url}/_sandbox",
        }

    def shopify_base(self, shop_domain: str) -> str:
        return f"{self.url}/shopify/{shop_domain}"

    def start(self) -> SandboxServer:
        self._thread = threading.Thread(
            target=self._httpd.serve_forever,
            kwargs={"poll_interval": 0.05},
            name=f"sandbox:{self.port}",
            daemon=True,
        )
        self._thread.start()
        return self

    def serve_forever(self) -> None:
        self._httpd.serve_forever()

    def stop(self) -> None:
        if self._thread is not None:
            self._httpd.shutdown()
            self._thread.join(timeout=5)
            self._thread = None
        self._httpd.server_close()

    def __enter__(self) -> SandboxServer:
        return self.start()

    def __exit__(self, *exc) -> None:
        self.stop()
