"""factory_boy factories for the loyalty models."""

from decimal import Decimal

import factory
from django.contrib.auth import get_user_model

from loyalty.models import EarningPolicy, Member, Reward, Store, Team, TeamMembership, Tier


class TeamFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = Team
        skip_postgeneration_save = True

    name = factory.Sequence(lambda n: f"Brand {n}")
    slug = factory.Sequence(lambda n: f"brand-{n}")
    plan = "omnichannel"
    currency = "USD"

    @factory.post_generation
    def rate(obj, create, extracted, **kwargs):
        if create:
            EarningPolicy.objects.create(
                team=obj, currency=obj.currency, rate=Decimal(extracted or "1")
            )


class UserFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = get_user_model()
        django_get_or_create = ("username",)

    username = factory.Sequence(lambda n: f"staff{n}@example.com")
    email = factory.SelfAttribute("username")
    is_staff = True
    password = factory.django.Password("pw-staff-123")


class MembershipFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = TeamMembership

    team = factory.SubFactory(TeamFactory)
    user = factory.SubFactory(UserFactory)
    role = "org_admin"


class TierFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = Tier

    team = factory.SubFactory(TeamFactory)
    name = factory.Sequence(lambda n: f"Tier {n}")
    threshold = 0
    multiplier = Decimal("1")


class MemberFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = Member

    team = factory.SubFactory(TeamFactory)
    email = factory.Sequence(lambda n: f"member{n}@example.com")
    name = factory.Sequence(lambda n: f"Member {n}")


class RewardFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = Reward

    team = factory.SubFactory(TeamFactory)
    name = factory.Sequence(lambda n: f"Reward {n}")
    points_cost = 100


class StoreFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = Store

    team = factory.SubFactory(TeamFactory)
    code = factory.Sequence(lambda n: f"ST-{n:03d}")
    name = factory.Sequence(lambda n: f"Store {n}")
