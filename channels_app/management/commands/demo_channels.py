"""Connect the demo team's Shopify, Amazon and TikTok Shop channels to the platform sandbox.

Run by `make demo` after `manage.py demo`, with `run_sandbox` already serving. Every run
re-connects through Save & Verify, because a new sandbox starts with fresh credentials (TikTok's
refresh token rotates, so last run's token means nothing to this run's sandbox)."""

import time

import requests
from django.core.management.base import BaseCommand, CommandError

from channels_app import services
from channels_app.models import Channel
from loyalty import errors
from loyalty.models import Team


class Command(BaseCommand):
    help = "Connect the demo team's three channels to a running sandbox (see run_sandbox)."

    def add_arguments(self, parser):
        parser.add_argument("--team", default="demo")
        parser.add_argument("--sandbox", default="http://127.0.0.1:8765")
        parser.add_argument("--wait", type=float, default=15.0, help="seconds to wait for it")

    def handle(self, *args, team: str, sandbox: str, wait: float, **options):
        team_obj = Team.objects.filter(slug=team).first()
        if team_obj is None:
            raise CommandError(f"No team '{team}'; run manage.py demo first.")
        demo = self._sandbox_demo(sandbox.rstrip("/"), wait)
        base = sandbox.rstrip("/")
        a, t, s = demo["amazon"], demo["tiktok"], demo["shopify"]
        wanted = [
            (
                "shopify",
                "Demo store",
                {
                    "shop_domain": s["shop_domain"],
                    "api_base": f"{base}/shopify/{s['shop_domain']}",
                },
                {"access_token": s["access_token"], "client_secret": s["client_secret"]},
            ),
            (
                "amazon",
                "Amazon US & CA",
                {
                    "client_id": a["client_id"],
                    "region": a["region"],
                    "marketplace_ids": a["marketplace_ids"],
                    "endpoint": f"{base}/amazon",
                    "lwa_url": f"{base}/amazon/auth/o2/token",
                },
                {"client_secret": a["client_secret"], "refresh_token": a["refresh_token"]},
            ),
            (
                "tiktok",
                "TikTok Shop",
                {
                    "app_key": t["app_key"],
                    "api_base": f"{base}/tiktok",
                    "auth_base": f"{base}/tiktok-auth",
                },
                {"app_secret": t["app_secret"], "refresh_token": t["refresh_token"]},
            ),
        ]
        for kind, name, config, secrets in wanted:
            channel = Channel.objects.filter(team=team_obj, kind=kind, name=name).first()
            try:
                if channel is None:
                    channel, check = services.channel_connect(
                        team=team_obj, kind=kind, name=name, config=config, secrets=secrets
                    )
                else:
                    check = services.channel_update(channel=channel, config=config, secrets=secrets)
            except errors.LoyaltyError as exc:
                raise CommandError(f"{name}: {exc.message}") from None
            self.stdout.write(f"  {name:<16} connected · {check.summary}")

    def _sandbox_demo(self, base: str, wait: float) -> dict:
        deadline = time.monotonic() + wait
        while True:
            try:
                return requests.get(f"{base}/_sandbox/demo", timeout=2).json()
            except (requests.RequestException, ValueError):
                if time.monotonic() > deadline:
                    raise CommandError(
                        f"The sandbox at {base} does not answer; start it with "
                        "manage.py run_sandbox."
                    ) from None
                time.sleep(0.3)
