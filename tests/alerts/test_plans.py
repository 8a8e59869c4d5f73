"""Plans carry max_alerts (SPEC: free 3, pro 50, business 1000), read like every other limit."""

import pytest
from django.test import Client

from accounts.models import User
from billing.limits import PlanLimits
from billing.models import Plan
from tests.conftest import host_client

pytestmark = pytest.mark.django_db


def test_the_seeded_plans_allow_the_alerts_of_the_spec() -> None:
    seeded = {p.slug: p.max_alerts for p in Plan.objects.filter(slug__in=["free", "pro", "business"])}
    assert seeded == {"free": 3, "pro": 50, "business": 1000}
    assert PlanLimits.of_plan(Plan.objects.get(slug="pro")).max_alerts == 50


def test_staff_edit_max_alerts_in_the_admin_and_a_form_without_it_keeps_the_value() -> None:
    staff = User.objects.create_superuser(email="staff@tickerdeck.example", password="x-staff-password-1")
    client: Client = host_client("localhost")
    client.force_login(staff)
    pro = Plan.objects.get(slug="pro")
    fields = ["name", "slug", "price_monthly", "max_symbols_per_stream", "max_streams", "max_watchlists",
              "max_widgets", "max_widget_viewers", "delay_minutes"]  # fmt: skip
    form = {field: getattr(pro, field) for field in fields} | {"realtime": "on", "is_public": "on"}
    url = f"/admin/billing/plan/{pro.pk}/change/"

    assert client.post(url, form).status_code == 302  # a form made before the field existed
    assert Plan.objects.get(pk=pro.pk).max_alerts == 50
    assert client.post(url, form | {"max_alerts": "75"}).status_code == 302
    assert Plan.objects.get(pk=pro.pk).max_alerts == 75
    refused = client.post(url, form | {"max_alerts": ""})
    assert refused.status_code == 200
    assert "Give the number of alerts this plan allows" in refused.content.decode()
