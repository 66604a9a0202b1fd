"""Django admin is scoped to the staff user's teams: Charlie (team B) sees nothing of A's."""

import pytest
from django.contrib.auth import get_user_model
from django.test import Client
from django.urls import reverse

from loyalty import api_keys, services
from loyalty.models import ApiIdempotencyRecord, ApiRequestLog, HeldAward, Member

pytestmark = pytest.mark.django_db

MODELS = [
    "member",
    "ledgerentry",
    "coupon",
    "heldaward",
    "reward",
    "store",
    "tier",
    "earningpolicy",
    "teammembership",
    "team",
    "outboxevent",
    "apikey",
    "apirequestlog",
    "apiidempotencyrecord",
]


@pytest.fixture
def a_data(team_a, member_a, reward_a):
    services.points_award(member=member_a, key="k", source="store", points=110)
    coupon = services.reward_redeem(member=member_a, reward=reward_a)
    _, key = api_keys.api_key_create(team=team_a, name="Alpha POS key", preset="write")
    Client().post(
        f"/api/v2/members/{member_a.public_id}/points",
        data={"amount": 1},
        content_type="application/json",
        headers={"Authorization": f"Bearer {key}", "Idempotency-Key": "alpha-1"},
    )
    assert ApiRequestLog.objects.count() == ApiIdempotencyRecord.objects.count() == 1
    team_a.daily_cap = 111
    team_a.save()
    services.points_award(member=member_a, key="k2", source="store", points=100)  # all held
    return {"member": member_a, "coupon": coupon, "hold": HeldAward.objects.get()}


def login(client, user):
    client.force_login(user)
    return client


@pytest.mark.parametrize(
    "path",
    [
        "/admin/channels_app/channel/",
        "/admin/channels_app/product/",
        "/admin/channels_app/productsync/",
        "/admin/channels_app/shopifyorder/",
        "/admin/channels_app/webhookdelivery/",
        "/admin/events/webhookendpoint/",
        "/admin/events/eventdelivery/",
        "/admin/events/emailautomation/",
        "/admin/events/emailsent/",
    ],
)
def test_every_other_admin_list_opens_for_a_team_admin(client, charlie, path):
    client.force_login(charlie)
    assert client.get(path).status_code == 200


@pytest.mark.parametrize("model", MODELS)
def test_charlie_lists_nothing_of_team_a(client, charlie, a_data, member_b, model):
    login(client, charlie)
    resp = client.get(reverse(f"admin:loyalty_{model}_changelist"))
    assert resp.status_code == 200
    body = resp.content.decode()
    assert "ann@example.com" not in body and "Alpha Coffee" not in body
    assert "Alpha POS key" not in body and "alpha-1" not in body
    assert a_data["member"].public_id not in body


def test_charlie_cannot_open_team_a_objects_by_id(client, charlie, a_data):
    login(client, charlie)
    for model, obj in [
        ("member", a_data["member"]),
        ("coupon", a_data["coupon"]),
        ("heldaward", a_data["hold"]),
    ]:
        url = reverse(f"admin:loyalty_{model}_change", args=[obj.pk])
        resp = client.get(url)
        assert resp.status_code == 302 or resp.status_code == 404  # "doesn't exist" redirect
        assert "ann@example.com" not in resp.content.decode()


def test_charlie_cannot_release_team_a_hold_through_the_action(client, charlie, a_data):
    login(client, charlie)
    resp = client.post(
        reverse("admin:loyalty_heldaward_changelist"),
        {"action": "release", "_selected_action": [a_data["hold"].pk]},
    )
    assert resp.status_code in (200, 302)
    assert HeldAward.objects.get().status == "held"


def test_alice_sees_and_releases_her_team_hold(client, alice, a_data):
    login(client, alice)
    body = client.get(reverse("admin:loyalty_member_changelist")).content.decode()
    assert "ann@example.com" in body
    client.post(
        reverse("admin:loyalty_heldaward_changelist"),
        {"action": "release", "_selected_action": [a_data["hold"].pk]},
    )
    assert HeldAward.objects.get().status == "released"
    assert Member.objects.get(pk=a_data["member"].pk).balance == 110 - 100 + 1 + 100


def test_reviewer_reads_but_cannot_edit_or_decide(client, bob, a_data):
    login(client, bob)
    member = a_data["member"]
    url = reverse("admin:loyalty_member_change", args=[member.pk])
    assert client.get(url).status_code == 200
    resp = client.post(url, {"name": "Hacked", "status": "blocked"})
    assert resp.status_code == 403
    assert Member.objects.get(pk=member.pk).name == "Ann"
    client.post(
        reverse("admin:loyalty_heldaward_changelist"),
        {"action": "release", "_selected_action": [a_data["hold"].pk]},
    )
    assert HeldAward.objects.get().status == "held"


def test_ledger_is_read_only_even_for_owners(client, alice, a_data):
    login(client, alice)
    assert client.get(reverse("admin:loyalty_ledgerentry_add")).status_code == 403


def test_staff_log_in_with_their_email(client, alice):
    resp = client.post(
        reverse("admin:login"),
        {"username": "alice@alpha.test", "password": "pw-staff-123", "next": "/admin/"},
    )
    assert resp.status_code == 302
    assert client.get("/admin/").status_code == 200


def test_charlie_cannot_assign_team_a_in_forms(client, charlie, team_a):
    login(client, charlie)
    resp = client.post(
        reverse("admin:loyalty_store_add"),
        {"team": team_a.pk, "code": "X-1", "name": "Sneaky", "status": "active"},
    )
    assert resp.status_code == 200  # the form re-renders with an invalid choice
    assert not team_a.stores.exists()
    assert get_user_model().objects.get(username="charlie@beta.test").is_staff
