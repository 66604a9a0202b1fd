"""Run the platform emulator in the foreground with the demo data.

python manage.py run_sandbox --port 8765
"""

from django.core.management.base import BaseCommand, CommandError

from channels_app.sandbox import CONTROL_ROUTES, Sandbox, SandboxServer, seed_demo


class Command(BaseCommand):
    help = "Serve the Amazon / TikTok Shop / Shopify emulator on 127.0.0.1 with demo data."

    def add_arguments(self, parser):
        parser.add_argument("--port", type=int, default=8765)
        parser.add_argument(
            "--verbose", action="store_true", help="Print one line per request (method, path)."
        )

    def handle(self, *args, port: int, verbose: bool, **options):
        sandbox = Sandbox()
        demo = seed_demo(sandbox)
        log = (lambda line: self.stdout.write(line)) if verbose else None
        try:
            server = SandboxServer(sandbox, port=port, log=log)
        except OSError as exc:
            raise CommandError(f"Cannot listen on 127.0.0.1:{port}: {exc.strerror}") from None
        self.stdout.write(self.banner(server, demo))
        try:
            server.serve_forever()
        except KeyboardInterrupt:
            self.stdout.write("\nSandbox stopped.")
        finally:
            server.stop()

    def banner(self, server: SandboxServer, demo: dict) -> str:
        a, t, s = demo["amazon"], demo["tiktok"], demo["shopify"]
        return f"""\
Flash platform sandbox on {server.url}  (fake data; these credentials open nothing real)

Shopify — Settings → Online Shop → Shopify
  shop_domain     {s["shop_domain"]}
  api_base        {server.shopify_base(s["shop_domain"])}
  access_token    {s["access_token"]}          (legacy custom app)
  or client_id    {s["client_id"]}
     client_secret {s["client_secret"]}   (Dev Dashboard app; also signs webhooks)

Amazon — Settings → Online Shop → Amazon
  endpoint        {server.url}/amazon
  lwa_url         {server.url}/amazon/auth/o2/token
  region          {a["region"]}    marketplace_ids  {" ".join(a["marketplace_ids"])}
  client_id       {a["client_id"]}
  client_secret   {a["client_secret"]}
  refresh_token   {a["refresh_token"]}
  an order to claim: {a["order_id"]}   (another seller's: {a["other"]["order_id"]})

TikTok Shop — Settings → Online Shop → TikTok Shop
  api_base        {server.url}/tiktok
  auth_base       {server.url}/tiktok-auth
  app_key         {t["app_key"]}
  app_secret      {t["app_secret"]}
  refresh_token   {t["refresh_token"]}   (rotates: works once per sandbox run)
  an order to claim: {t["order_id"]}   (another seller's: {t["other"]["order_id"]})

Control API ({server.url}/_sandbox):
{CONTROL_ROUTES}
Press Ctrl-C to stop."""
