"""An emulator of the three platforms' HTTP APIs (Amazon SP-API, TikTok Shop, Shopify Admin)
for the demo and the tests. Framework-free: it never imports Django.

    from channels_app.sandbox import Sandbox, SandboxServer, seed_demo
    sandbox = Sandbox(); seed_demo(sandbox)
    server = SandboxServer(sandbox).start()   # http://127.0.0.1:<free port>
"""

from .app import CONTROL_ROUTES, make_app
from .seed import seed_demo
from .server import SandboxServer
from .state import PLATFORMS, Sandbox

__all__ = ["CONTROL_ROUTES", "PLATFORMS", "Sandbox", "SandboxServer", "make_app", "seed_demo"]
