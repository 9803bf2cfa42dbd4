import json

import pytest
from django.core.management import call_command
from django.core.management.base import CommandError

from orgs.models import Membership, Role
from tests.conftest import FREE_SEATS, fill_seats

pytestmark = pytest.mark.django_db


@pytest.fixture
def csv_file(tmp_path):
    def write(text):
        path = tmp_path / "members.csv"
        path.write_text(text)
        return str(path)

    return write


def run(path, capsys, product="red"):
    call_command("import_memberships", path, "--product", product)
    captured = capsys.readouterr()
    return json.loads(captured.out.splitlines()[-1]), captured.err


def test_it_imports_through_the_service_and_is_idempotent(org, product, csv_file, capsys):
    path = csv_file(
        "org_id,user_id,role,email\n"
        f"{org.public_id},u-new,admin,new@x.example\n"
        f"{org.public_id},user-member,billing,\n"
    )

    first, _ = run(path, capsys)
    second, _ = run(path, capsys)

    assert first == {"created": 1, "updated": 1, "unchanged": 0, "rejected": 0, "rejections": []}
    assert second == {"created": 0, "updated": 0, "unchanged": 2, "rejected": 0, "rejections": []}
    membership = Membership.objects.get(org=org, user_id="u-new")
    assert (membership.role, membership.email, membership.product) == (Role.ADMIN, "new@x.example", product)


def test_it_rejects_bad_rows_with_reasons_and_imports_the_rest(org, product, csv_file, capsys):
    fill_seats(org, leave=1)  # room for one more member
    path = csv_file(
        "org_id,user_id,role,email\n"
        "org_missing,u-1,member,\n"
        f"{org.public_id},u-2,emperor,\n"
        f"{org.public_id},user-owner,member,\n"
        f"{org.public_id},u-3,member,bad-email\n"
        f"{org.public_id},u-4,member,\n"
        f"{org.public_id},u-5,member,\n"
    )

    result, err = run(path, capsys)

    assert (result["created"], result["rejected"]) == (1, 5)
    assert [(r["row"], r["reason"]) for r in result["rejections"]] == [
        (1, "org_not_found"),
        (2, "invalid_role"),
        (3, "last_owner"),
        (4, "invalid_email"),
        (6, "seat_limit_reached"),
    ]
    assert "line 2: rejected (org_not_found)" in err
    assert Membership.objects.filter(org=org).count() == FREE_SEATS


def test_it_needs_the_header_and_the_product(org, product, csv_file):
    with pytest.raises(CommandError, match="header"):
        call_command("import_memberships", csv_file("user_id,org_id\n"), "--product", "red")
    with pytest.raises(CommandError, match="No product"):
        call_command("import_memberships", csv_file("org_id,user_id,role,email\n"), "--product", "nope")
