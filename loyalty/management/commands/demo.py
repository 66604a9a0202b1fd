"""Seed a demo team with members, tiers, rewards, stores and some history."""

import random
from decimal import Decimal

from django.contrib.auth import get_user_model
from django.core.management.base import BaseCommand
from django.db import transaction

from loyalty import services
from loyalty.accounts import staff_create, team_create
from loyalty.models import EarningPolicy, Member, Reward, Store, Team, Tier

SLUG = "demo"
PASSWORD = "flash-demo-2026"
STAFF = [
    ("owner@demo.flash", "org_owner"),
    ("reviewer@demo.flash", "reviewer"),
]
SUPERUSER = "admin@flash.local"
MEMBERS = [
    ("maya@example.com", "Maya Lopez"),
    ("sam@example.com", "Sam Chen"),
    ("ines@example.com", "Inès Duval"),
    ("tom@example.com", "Tom Okafor"),
    ("lea@example.com", "Léa Martin"),
]


class Command(BaseCommand):
    help = "Create (once) the demo team 'demo' with staff, members and history; print the logins."

    def handle(self, *args, **options):
        if not Team.objects.filter(slug=SLUG).exists():
            with transaction.atomic():
                self._seed()
        self._print_logins()

    def _seed(self):
        team = team_create(
            name="Flash Demo Coffee",
            slug=SLUG,
            plan="omnichannel",
            currency="USD",
            rate="1",
            daily_cap=1500,
        )
        EarningPolicy.objects.create(team=team, currency="CAD", rate=Decimal("0.75"))
        for name, threshold, mult in [
            ("Member", 0, "1"),
            ("Silver", 500, "1.25"),
            ("Gold", 1500, "1.5"),
        ]:
            Tier.objects.create(team=team, name=name, threshold=threshold, multiplier=mult)
        for name, cost, desc in [
            ("Free espresso", 150, "Any size, any store"),
            ("$10 off", 400, "On a purchase of $30 or more"),
            ("Bag of beans", 900, "250 g, roaster's choice"),
        ]:
            Reward.objects.create(team=team, name=name, points_cost=cost, description=desc)
        stores = [
            Store.objects.create(team=team, code=code, name=name)
            for code, name in [
                ("ST-NYC-01", "New York · SoHo"),
                ("ST-NYC-02", "New York · Chelsea"),
                ("ST-MTL-01", "Montréal · Plateau"),
            ]
        ]
        for email, role in STAFF:
            staff_create(team=team, email=email, password=PASSWORD, role=role)
        User = get_user_model()
        if not User.objects.filter(username=SUPERUSER).exists():
            User.objects.create_superuser(SUPERUSER, SUPERUSER, PASSWORD)

        rng = random.Random(2026)  # the same demo every time
        for i, (email, name) in enumerate(MEMBERS):
            member = services.member_enroll(team=team, email=email, name=name, password=PASSWORD)
            for n in range(4 + 3 * i):
                store = rng.choice(stores)
                amount = Decimal(rng.randint(800, 9000)) / 100
                services.points_award(
                    member=Member.objects.get(pk=member.pk),
                    key=f"demo:{email}:{n}",
                    source="store",
                    amount=amount,
                    description=f"In-store purchase · {store.code} · txn {9000 + n}",
                )
        maya = Member.objects.get(email="maya@example.com", team=team)
        services.reward_redeem(member=maya, reward=Reward.objects.get(team=team, points_cost=150))
        # One award in a currency without a rate, so the console shows a held award.
        services.points_award(
            member=maya,
            key="demo:maya:eur",
            source="api",
            amount="25.00",
            currency="EUR",
            description="Order in EUR (no rate yet)",
        )

    def _print_logins(self):
        w = self.stdout.write
        w("")
        w("Flash demo is ready.")
        w("  Team console:   http://127.0.0.1:8000/console/")
        w("  Back office:    http://127.0.0.1:8000/admin/")
        w(f"  Member portal:  http://127.0.0.1:8000/p/{SLUG}/")
        w(f"  Staff logins (password {PASSWORD}):")
        for email, role in STAFF:
            w(f"    {email:<24} {role}")
        w(f"    {SUPERUSER:<24} system admin")
        w(f"  Member logins (password {PASSWORD}): " + ", ".join(e for e, _ in MEMBERS))
        w("")
