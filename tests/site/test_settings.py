"""Start-up guards: a bad setting stops the process with a message naming the variable; commands
that serve nothing run without the web process's secrets."""

import os
import subprocess
import sys

import pytest
from django.conf import settings

BASE = {
    "PATH": os.environ["PATH"],
    "SECRET_KEY": "x",
    "ALLOWED_HOSTS": "example.com",
    "DATABASE_URL": "postgres://postgres@127.0.0.1:5432/billing",
    "REDIS_URL": "redis://127.0.0.1:6379/0",
}


def start(**env):
    """Start the web process (the WSGI application) with BASE's environment changed by env."""
    merged = {key: value for key, value in {**BASE, **env}.items() if value is not None}
    return subprocess.run(
        [sys.executable, "-c", "import billingsite.wsgi; print('started')"],
        cwd=settings.BASE_DIR,
        env={**merged, "DJANGO_SETTINGS_MODULE": "billingsite.settings"},
        capture_output=True,
        text=True,
        check=False,
    )


def test_valid_settings_start():
    assert start().stdout.strip() == "started"


@pytest.mark.parametrize(
    ("env", "named"),
    [
        ({"DEBUG": "maybe"}, "DEBUG"),
        ({"SECRET_KEY": None}, "SECRET_KEY"),
        ({"ALLOWED_HOSTS": None}, "ALLOWED_HOSTS"),
        ({"DATABASE_URL": "mysq1://nope"}, "DATABASE_URL"),
        ({"REDIS_URL": "localhost:6379"}, "REDIS_URL"),
        ({"STRIPE_API_HOST": "localhost:8420"}, "STRIPE_API_HOST"),
        ({"BILLING_SHADOW_MODE": "perhaps"}, "BILLING_SHADOW_MODE"),
        ({"BILLING_BILL_FROM": "2026-12-01T00:30:00Z"}, "BILLING_BILL_FROM"),
        ({"BILLING_BILL_FROM": "yesterday"}, "BILLING_BILL_FROM"),
        ({"SUPPORT_CREDIT_GRANT_LIMIT": "lots"}, "SUPPORT_CREDIT_GRANT_LIMIT"),
    ],
)
def test_an_invalid_value_stops_start_up_naming_the_variable(env, named):
    result = start(**env)

    assert result.returncode != 0
    assert "ImproperlyConfigured" in result.stderr and named in result.stderr.splitlines()[-1]


def test_commands_run_without_the_web_process_settings(tmp_path):
    result = subprocess.run(
        [sys.executable, "manage.py", "makemigrations", "--check", "--dry-run"],
        cwd=settings.BASE_DIR,
        env={"PATH": os.environ["PATH"], "DATABASE_URL": f"sqlite:///{tmp_path / 'db.sqlite3'}"},
        capture_output=True,
        text=True,
        check=False,
    )

    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == "No changes detected"


LIVE = {"STRIPE_LIVE_MODE": "true", "STRIPE_LIVE_SECRET_KEY": "sk_live_x"}


def test_live_mode_starts_when_safe():
    assert start(**LIVE).stdout.strip() == "started"


@pytest.mark.parametrize(
    ("env", "reason"),
    [
        ({"DEBUG": "true"}, "DEBUG"),
        ({"DATABASE_URL": None}, "SQLite"),
        ({"REDIS_URL": None}, "REDIS_URL"),
    ],
)
def test_live_mode_refuses_unsafe_setups(env, reason):
    result = start(**LIVE, **env)

    assert result.returncode != 0
    assert "STRIPE_LIVE_MODE" in result.stderr and reason in result.stderr
