"""Idempotency-Key under concurrency: 20 identical requests at once, one entry, one answer."""

import json

import pytest
from django.test import Client

from loyalty import api_keys
from loyalty.models import ApiRequestLog, LedgerEntry, Member

from .test_concurrency import run_concurrently

pytestmark = pytest.mark.django_db(transaction=True)


def test_twenty_concurrent_requests_with_one_idempotency_key(team_a, member_a):
    _, key = api_keys.api_key_create(team=team_a, name="POS", preset="write")

    def call(i):
        resp = Client().post(
            f"/api/v2/members/{member_a.public_id}/points",
            data=json.dumps({"amount": 120, "description": "txn 90871"}),
            content_type="application/json",
            headers={"Authorization": f"Bearer {key}", "Idempotency-Key": "sale-90871"},
        )
        return resp.status_code, resp.json()

    results = run_concurrently(20, call)
    assert all(isinstance(r, tuple) for r in results), results
    assert {status for status, _ in results} == {200}
    answers = {json.dumps(body, sort_keys=True) for _, body in results}
    assert len(answers) == 1, answers
    assert LedgerEntry.objects.filter(member=member_a).count() == 1
    assert Member.objects.get(pk=member_a.pk).balance == 120
    assert ApiRequestLog.objects.count() == 20
