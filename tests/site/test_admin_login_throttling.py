"""Admin login throttling (django-axes): a username tried from one address is locked out after
AXES_FAILURE_LIMIT failures, for that pair only; a success before the limit resets the count."""

import pytest
from django.conf import settings
from django.urls import reverse

from orgs.staff import SUPPORT
from tests.conftest import staff

pytestmark = pytest.mark.django_db
LOGIN = reverse("admin:login")
PASSWORD = "a-long-enough-password-9"


@pytest.fixture
def sam():
    user = staff("sam", SUPPORT)
    user.set_password(PASSWORD)
    user.save()
    return user


def log_in(client, password, *, ip="203.0.113.7", username="sam"):
    return client.post(LOGIN, {"username": username, "password": password}, REMOTE_ADDR=ip)


def test_a_username_tried_too_often_from_one_address_is_locked_out(client, sam):
    for _ in range(settings.AXES_FAILURE_LIMIT - 1):
        assert log_in(client, "wrong").status_code == 200  # the form again, with its error
    assert log_in(client, "wrong").status_code == 429  # the limit reached: locked out

    locked = log_in(client, PASSWORD)

    assert locked.status_code == 429
    assert "_auth_user_id" not in client.session


def test_the_lockout_is_for_that_address_only(client, sam):
    for _ in range(settings.AXES_FAILURE_LIMIT):
        log_in(client, "wrong", ip="203.0.113.7")

    elsewhere = log_in(client, PASSWORD, ip="198.51.100.4")

    assert elsewhere.status_code == 302 and client.session["_auth_user_id"] == str(sam.pk)


def test_a_success_before_the_limit_resets_the_count(client, sam):
    for _ in range(settings.AXES_FAILURE_LIMIT - 1):
        log_in(client, "wrong")
    assert log_in(client, PASSWORD).status_code == 302
    client.logout()

    for _ in range(settings.AXES_FAILURE_LIMIT - 1):
        log_in(client, "wrong")

    assert log_in(client, PASSWORD).status_code == 302
