"""The endpoints API: register, list, delete, rotate the secret; the SSRF guard in live mode."""

import socket

import pytest

from orgs.models import AuditEntry, EventEndpoint

pytestmark = pytest.mark.django_db

URL = "/api/v1/event-endpoints"


def register(api, **body):
    body = {"url": "https://red.example/hooks", "event_types": ["org.suspended"], **body}
    return api.post(URL, body, format="json")


def test_it_registers_an_endpoint_and_shows_its_secret_once(api, product):
    response = register(api, event_types=["org.suspended", "credits.low"], description="listener")

    assert response.status_code == 201
    body = response.json()
    assert body["id"].startswith("ep_") and body["secret"].startswith("whsec_")
    assert {k: body[k] for k in ("url", "event_types", "description", "disabled_at")} == {
        "url": "https://red.example/hooks",
        "event_types": ["org.suspended", "credits.low"],
        "description": "listener",
        "disabled_at": None,
    }
    listed = api.get(URL).json()["results"]
    assert [e["id"] for e in listed] == [body["id"]] and "secret" not in listed[0]
    assert AuditEntry.objects.get(action="event_endpoint.created").product == product


def test_an_unknown_event_type_is_invalid_and_writes_nothing(api):
    response = register(api, event_types=["org.suspended", "org.exploded"])

    assert response.status_code == 400
    error = response.json()["error"]
    assert error["code"] == "invalid_request" and "event_types" in error["details"]["fields"]
    assert not EventEndpoint.objects.exists()


def test_no_event_type_is_invalid(api):
    assert register(api, event_types=[]).json()["error"]["code"] == "invalid_request"


def test_an_unknown_field_is_refused(api):
    response = register(api, secret="whsec_mine")

    assert (response.status_code, response.json()["error"]["code"]) == (400, "unknown_field")
    assert not EventEndpoint.objects.exists()


def test_it_needs_a_key(client):
    assert client.post(URL, {}, content_type="application/json").status_code == 401


def test_another_products_endpoint_does_not_exist_for_it(api, other_api):
    endpoint = register(api).json()

    assert other_api.get(URL).json()["results"] == []
    for response in (
        other_api.delete(f"{URL}/{endpoint['id']}"),
        other_api.post(f"{URL}/{endpoint['id']}:rotate-secret", {}, format="json"),
        other_api.get("/api/v1/event-deliveries", {"endpoint_id": endpoint["id"]}),
    ):
        assert (response.status_code, response.json()["error"]["code"]) == (404, "endpoint_not_found")
    assert EventEndpoint.objects.get().deleted_at is None


def test_deleting_an_endpoint_twice(api):
    endpoint = register(api).json()

    assert api.delete(f"{URL}/{endpoint['id']}").status_code == 204
    assert api.get(URL).json()["results"] == []
    again = api.delete(f"{URL}/{endpoint['id']}")
    assert (again.status_code, again.json()["error"]["code"]) == (404, "endpoint_not_found")


def test_rotating_gives_a_new_secret_and_keeps_the_old_one_for_a_day(api):
    endpoint = register(api).json()

    response = api.post(f"{URL}/{endpoint['id']}:rotate-secret", {}, format="json")

    assert response.status_code == 200
    assert response.json()["secret"] not in ("", endpoint["secret"])
    stored = EventEndpoint.objects.get()
    assert (stored.secret, stored.previous_secret) == (response.json()["secret"], endpoint["secret"])
    assert AuditEntry.objects.filter(action="event_endpoint.secret_rotated").count() == 1
    assert endpoint["secret"] not in str(AuditEntry.objects.values_list("after", flat=True))


def test_rotating_refuses_a_body_field(api):
    endpoint = register(api).json()

    response = api.post(f"{URL}/{endpoint['id']}:rotate-secret", {"secret": "x"}, format="json")

    assert response.json()["error"]["code"] == "unknown_field"


# --- live mode: https to public addresses only (the SSRF guard) ---------------------------------------


@pytest.fixture
def live(settings, monkeypatch):
    settings.STRIPE_LIVE_MODE = True
    real = socket.getaddrinfo
    names = {"hooks.red.example": "93.184.216.34", "internal.red.example": "10.0.0.7"}

    def resolve(host, port, *args, **kwargs):
        if host in names:
            return [(socket.AF_INET, socket.SOCK_STREAM, 6, "", (names[host], port))]
        if host.endswith(".example"):
            raise socket.gaierror("no such name")
        return real(host, port, *args, **kwargs)

    monkeypatch.setattr(socket, "getaddrinfo", resolve)
    return names


@pytest.mark.parametrize(
    "url",
    [
        "http://hooks.red.example/events",  # not https
        "https://127.0.0.1/events",  # loopback
        "https://localhost:8443/events",
        "https://[::1]/events",
        "https://10.1.2.3/events",  # private
        "https://192.168.0.10/events",
        "https://169.254.169.254/latest/meta-data",  # link-local: cloud metadata
        "https://100.64.0.1/events",  # shared address space (CGNAT)
        "https://[::ffff:127.0.0.1]/events",  # loopback in IPv6 clothing
        "https://internal.red.example/events",  # a name that resolves to a private address
        "https://nowhere.example/events",  # a name that does not resolve
        "https://user:pass@hooks.red.example/events",
        "ftp://hooks.red.example/events",
    ],
)
def test_live_mode_refuses_urls_that_are_not_public_https(api, live, url):
    response = register(api, url=url)

    assert response.status_code == 400
    error = response.json()["error"]
    assert error["code"] == "invalid_request" and list(error["details"]["fields"]) == ["url"]
    assert not EventEndpoint.objects.exists()


def test_live_mode_accepts_https_to_a_public_host(api, live):
    assert register(api, url="https://hooks.red.example/events").status_code == 201


def test_test_mode_accepts_a_local_receiver(api):
    assert register(api, url="http://127.0.0.1:8080/hooks").status_code == 201
