"""The stand-in's protocol: decoding, errors, lists, idempotency, the request log, faults, signing."""

import re
import threading
import time
from datetime import UTC, datetime

import pytest
import requests
import stripe

from tests.stripe_standin import objects
from tests.stripe_standin.fixtures import STANDIN_API_KEY
from tests.stripe_standin.server import StripeStandin, decode_form, sign_webhook


@pytest.fixture
def no_retries():
    """The stripe library retries 5xx, 409 and timeouts twice by default: these tests want one try."""
    saved = stripe.max_network_retries
    stripe.max_network_retries = 0
    yield
    stripe.max_network_retries = saved


@pytest.fixture
def short_timeout():
    saved = stripe.default_http_client
    stripe.default_http_client = stripe.RequestsClient(timeout=0.3)
    yield
    stripe.default_http_client = saved


def raw(standin, method, path, data=None, headers=None, key=STANDIN_API_KEY):
    """A request as plain HTTP, for what the stripe library would not send."""
    all_headers = {"Authorization": f"Bearer {key}"} if key else {}
    all_headers.update(headers or {})
    return requests.request(method, standin.url + path, data=data, headers=all_headers, timeout=5)


# --- decoding -----------------------------------------------------------------------------------


def test_it_decodes_nested_keys():
    params = decode_form([("a[b][c]", "v"), ("metadata[org]", "org_1"), ("name", "Acme")])

    assert params == {"a": {"b": {"c": "v"}}, "metadata": {"org": "org_1"}, "name": "Acme"}


def test_it_decodes_indexed_lists_of_objects():
    params = decode_form([("items[0][price]", "p1"), ("items[0][quantity]", "2"), ("items[1][price]", "p2")])

    assert params == {"items": [{"price": "p1", "quantity": "2"}, {"price": "p2"}]}


def test_it_decodes_bracket_lists_and_indexed_scalar_lists():
    params = decode_form(
        [("expand[]", "a"), ("expand[]", "b"), ("lookup_keys[0]", "x"), ("lookup_keys[1]", "y")]
    )

    assert params == {"expand": ["a", "b"], "lookup_keys": ["x", "y"]}


def test_it_keeps_empty_values_which_unset_in_stripe():
    assert decode_form([("metadata[plan]", ""), ("description", "")]) == {
        "metadata": {"plan": ""},
        "description": "",
    }


def test_it_receives_what_the_stripe_library_encodes(stripe_standin):
    stripe.checkout.Session.create(
        mode="subscription",
        line_items=[{"price": stripe_standin.add_price(unit_amount=100)["id"], "quantity": 2}],
        metadata={"org_id": "org_1"},
        expand=["line_items"],
    )

    params = stripe_standin.requests_to("POST", "/v1/checkout/sessions")[0].params
    assert params["line_items"] == [{"price": params["line_items"][0]["price"], "quantity": "2"}]
    assert params["metadata"] == {"org_id": "org_1"}
    assert params["expand"] == ["line_items"]


# --- errors ---------------------------------------------------------------------------------------


def test_it_answers_404_resource_missing_for_an_unknown_id(stripe_standin):
    with pytest.raises(stripe.InvalidRequestError) as caught:
        stripe.Customer.retrieve("cus_Missing000000")

    assert caught.value.http_status == 404
    assert caught.value.json_body == {
        "error": {
            "type": "invalid_request_error",
            "code": "resource_missing",
            "doc_url": "https://stripe.com/docs/error-codes/resource-missing",
            "message": "No such customer: 'cus_Missing000000'",
            "param": "id",
        }
    }


def test_it_refuses_a_parameter_it_does_not_model(stripe_standin):
    with pytest.raises(stripe.InvalidRequestError) as caught:
        stripe.Customer.create(email="a@example.com", favourite_colour="blue")

    assert caught.value.code == "parameter_unknown"
    assert caught.value.param == "favourite_colour"
    assert "favourite_colour" in stripe_standin.requests[-1].note


def test_it_answers_404_for_an_unknown_route(stripe_standin):
    response = raw(stripe_standin, "GET", "/v1/charges")

    assert response.status_code == 404
    assert response.json()["error"]["message"].startswith("Unrecognized request URL (GET: /v1/charges)")


def test_it_answers_401_without_an_api_key(stripe_standin):
    response = raw(stripe_standin, "GET", "/v1/customers", key=None)

    assert response.status_code == 401
    assert response.json()["error"]["type"] == "invalid_request_error"


def test_it_sends_request_ids_and_the_version_back(stripe_standin):
    response = raw(stripe_standin, "GET", "/v1/account", headers={"Stripe-Version": objects.API_VERSION})

    assert response.headers["Request-Id"].startswith("req_")
    assert response.headers["Stripe-Version"] == objects.API_VERSION


# --- lists ----------------------------------------------------------------------------------------


def test_it_lists_newest_first_in_stripe_envelope(stripe_standin):
    first = stripe_standin.add_customer(email="first@example.com")
    second = stripe_standin.add_customer(email="second@example.com")

    listed = raw(stripe_standin, "GET", "/v1/customers").json()

    assert listed["object"] == "list"
    assert listed["url"] == "/v1/customers"
    assert listed["has_more"] is False
    assert [c["id"] for c in listed["data"]] == [second["id"], first["id"]]


def test_it_pages_with_limit_and_starting_after(stripe_standin):
    ids = [stripe_standin.add_customer(email=f"{n}@example.com")["id"] for n in range(5)]

    page = stripe.Customer.list(limit=2)
    every = [c.id for c in stripe.Customer.list(limit=2).auto_paging_iter()]

    assert [c.id for c in page.data] == [ids[4], ids[3]]
    assert page.has_more is True
    assert every == list(reversed(ids))
    assert [r.params.get("starting_after") for r in stripe_standin.requests_to("GET", "/v1/customers")] == [
        None,
        None,
        ids[3],
        ids[1],
    ]


def test_it_pages_backwards_with_ending_before(stripe_standin):
    ids = [stripe_standin.add_customer(email=f"{n}@example.com")["id"] for n in range(4)]

    page = stripe.Customer.list(limit=2, ending_before=ids[1])

    assert [c.id for c in page.data] == [ids[3], ids[2]]
    assert page.has_more is False


def test_it_refuses_a_limit_over_100(stripe_standin):
    with pytest.raises(stripe.InvalidRequestError) as caught:
        stripe.Customer.list(limit=101)

    assert caught.value.param == "limit"


# --- idempotency ----------------------------------------------------------------------------------


def test_it_replays_the_first_answer_for_the_same_key_and_params(stripe_standin):
    first = stripe.Customer.create(email="a@example.com", idempotency_key="key-1")
    again = stripe.Customer.create(email="a@example.com", idempotency_key="key-1")

    assert again.id == first.id
    assert len(stripe_standin.get_all("customer")) == 1
    records = stripe_standin.requests_to("POST", "/v1/customers")
    assert [(r.idempotency_key, r.replayed) for r in records] == [("key-1", False), ("key-1", True)]


def test_it_marks_a_replayed_answer_in_its_headers(stripe_standin):
    headers = {"Idempotency-Key": "key-2"}
    raw(stripe_standin, "POST", "/v1/customers", {"email": "a@example.com"}, headers)

    response = raw(stripe_standin, "POST", "/v1/customers", {"email": "a@example.com"}, headers)

    assert response.headers["Idempotent-Replayed"] == "true"
    assert response.headers["Idempotency-Key"] == "key-2"


def test_it_refuses_the_same_key_with_other_params(stripe_standin):
    stripe.Customer.create(email="a@example.com", idempotency_key="key-3")

    with pytest.raises(stripe.IdempotencyError) as caught:
        stripe.Customer.create(email="b@example.com", idempotency_key="key-3")

    assert caught.value.http_status == 400
    assert caught.value.json_body["error"]["type"] == "idempotency_error"
    assert "key-3" in caught.value.json_body["error"]["message"]
    assert len(stripe_standin.get_all("customer")) == 1


def test_it_does_not_save_a_validation_error_under_the_key(stripe_standin):
    with pytest.raises(stripe.InvalidRequestError):
        stripe.Product.create(idempotency_key="key-4")  # no name

    # Stripe saves a result only once the endpoint runs: the same key may then succeed.
    with pytest.raises(stripe.InvalidRequestError):
        stripe.Product.create(idempotency_key="key-4")
    assert stripe_standin.requests[-1].replayed is False


def test_it_forgets_keys_after_24_hours(stripe_standin, time_machine):
    time_machine.move_to("2026-07-01T00:00:00Z", tick=False)
    stripe.Customer.create(email="a@example.com", idempotency_key="key-5")
    time_machine.move_to("2026-07-02T00:00:01Z", tick=False)

    stripe.Customer.create(email="b@example.com", idempotency_key="key-5")

    assert len(stripe_standin.get_all("customer")) == 2


# --- the request log ------------------------------------------------------------------------------


def test_it_records_method_path_params_key_version_and_time(stripe_standin, time_machine):
    time_machine.move_to("2026-07-01T12:00:00Z", tick=False)
    stripe.Customer.create(
        email="a@example.com",
        metadata={"org": "org_1"},
        idempotency_key="k",
        stripe_version=objects.API_VERSION,
    )

    (record,) = stripe_standin.requests
    assert (record.method, record.path) == ("POST", "/v1/customers")
    assert record.params == {"email": "a@example.com", "metadata": {"org": "org_1"}}
    assert record.idempotency_key == "k"
    assert record.stripe_version == objects.API_VERSION
    assert record.api_key == stripe.api_key
    assert record.time == datetime(2026, 7, 1, 12, tzinfo=UTC).timestamp()
    assert (record.status, record.response["object"]) == (200, "customer")


def test_every_library_call_sends_the_pinned_version(stripe_standin, settings):
    # stripe 15.6 would send its own 2026-08-26.dahlia; the project pins stripe.api_version at start-up
    # (billing.apps), so plain library calls send STRIPE_API_VERSION like dj-stripe's do.
    stripe.Customer.list()
    stripe.Customer.list(stripe_version=settings.STRIPE_API_VERSION)

    versions = [r.stripe_version for r in stripe_standin.requests]
    assert versions == [settings.STRIPE_API_VERSION] * 2


def test_requests_to_filters_by_method_and_prefix_or_regex(stripe_standin):
    customer = stripe_standin.add_customer()
    stripe.Customer.retrieve(customer["id"])
    stripe.Customer.modify(customer["id"], name="Acme")
    stripe.Product.list()

    assert len(stripe_standin.requests_to("GET", "/v1/customers/")) == 1
    assert len(stripe_standin.requests_to("*", "/v1/customers/")) == 2
    assert len(stripe_standin.requests_to("GET", re.compile(r"^/v1/(customers|products)"))) == 2
    assert stripe_standin.calls() == [
        f"GET /v1/customers/{customer['id']}",
        f"POST /v1/customers/{customer['id']}",
        "GET /v1/products",
    ]


def test_reset_forgets_everything(stripe_standin):
    stripe_standin.add_customer()
    stripe.Customer.list()
    stripe_standin.fail_next("GET", "/v1/products")

    stripe_standin.reset()

    assert stripe_standin.requests == []
    assert stripe_standin.get_all("customer") == []
    assert stripe.Product.list().data == []


def test_the_fixture_points_the_library_at_the_stand_in(stripe_standin):
    assert stripe.api_base == stripe_standin.url
    assert stripe_standin.url.startswith("http://127.0.0.1:")


# --- faults ---------------------------------------------------------------------------------------


def test_it_fails_the_next_request_with_a_5xx(stripe_standin, no_retries):
    stripe_standin.fail_next("POST", "/v1/customers", status=500)

    with pytest.raises(stripe.APIError) as caught:
        stripe.Customer.create(email="a@example.com")
    stripe.Customer.create(email="a@example.com")

    assert caught.value.http_status == 500
    assert caught.value.json_body["error"]["type"] == "api_error"
    first, second = stripe_standin.requests
    assert (first.status, first.fault is not None, second.status, second.fault) == (500, True, 200, None)
    assert len(stripe_standin.get_all("customer")) == 1  # the failed one never reached the logic


def test_the_library_retries_a_5xx_with_the_same_idempotency_key(stripe_standin, monkeypatch):
    monkeypatch.setattr(stripe._http_client.HTTPClient, "INITIAL_DELAY", 0.01)
    stripe_standin.fail_next("POST", "/v1/customers", status=503)

    stripe.Customer.create(email="a@example.com")  # stripe.max_network_retries is 2 by default

    first, second = stripe_standin.requests
    assert (first.status, second.status) == (503, 200)
    assert first.idempotency_key == second.idempotency_key


def test_it_fails_several_times_and_matches_a_regex(stripe_standin, no_retries):
    stripe_standin.fail_next("GET", re.compile(r"^/v1/invoices/in_[^/]+$"), status=502, times=2)
    customer = stripe_standin.add_customer()
    invoice = stripe_standin.add_invoice(customer, lines=[(stripe_standin.add_price(unit_amount=5)["id"], 5)])

    for _ in range(2):
        with pytest.raises(stripe.APIError):
            stripe.Invoice.retrieve(invoice["id"])

    assert stripe.Invoice.retrieve(invoice["id"]).id == invoice["id"]


def test_it_answers_a_rate_limit_in_stripes_shape(stripe_standin, no_retries):
    stripe_standin.fail_next("POST", "/v1/billing/meter_events", status=429)

    with pytest.raises(stripe.RateLimitError) as caught:
        stripe.billing.MeterEvent.create(
            event_name="x", payload={"stripe_customer_id": "cus_x", "value": "1"}
        )

    assert caught.value.http_status == 429
    assert caught.value.json_body["error"]["code"] == "rate_limit"


def test_a_slow_answer_times_the_client_out_and_changes_nothing(stripe_standin, no_retries, short_timeout):
    stripe_standin.fail_next("POST", "/v1/customers", status=500, delay=1.0)

    with pytest.raises(stripe.APIConnectionError):
        stripe.Customer.create(email="a@example.com")

    assert stripe_standin.requests[0].fault.delay == 1.0
    assert stripe_standin.get_all("customer") == []


def test_a_lost_answer_after_the_work_was_done_replays_for_the_same_key(stripe_standin, no_retries):
    # "Stripe did it but the answer was lost": the customer exists, the client saw a 500.
    stripe_standin.fail_next("POST", "/v1/customers", status=500, after=True)

    with pytest.raises(stripe.APIError):
        stripe.Customer.create(email="a@example.com", idempotency_key="retry-me")
    retried = stripe.Customer.create(email="a@example.com", idempotency_key="retry-me")

    assert [c["id"] for c in stripe_standin.get_all("customer")] == [retried.id]
    assert stripe_standin.requests[-1].replayed is True


def test_a_slow_real_answer_arrives_after_the_delay(stripe_standin):
    stripe_standin.fail_next("GET", "/v1/account", status=None, delay=0.2)

    started = time.perf_counter()
    account = stripe.Account.retrieve()

    assert time.perf_counter() - started >= 0.2
    assert account.id == stripe_standin.account["id"]


# --- what happens at Stripe between two calls --------------------------------------------------------


def test_before_next_changes_state_just_before_the_matching_request(stripe_standin):
    customer = stripe_standin.add_customer(name="Before")
    seen = []

    def meanwhile(request):
        seen.append((request.method, request.path))
        stripe_standin.update(customer["id"], name="Changed meanwhile")

    stripe_standin.before_next("POST", f"/v1/customers/{customer['id']}", meanwhile)
    listed = stripe.Customer.retrieve(customer["id"])  # a GET: the hook waits for the POST
    updated = stripe.Customer.modify(customer["id"], email="a@example.com")
    again = stripe.Customer.modify(customer["id"], email="b@example.com")

    assert listed.name == "Before"
    assert (updated.name, updated.email) == ("Changed meanwhile", "a@example.com")
    assert seen == [("POST", f"/v1/customers/{customer['id']}")]  # once: times=1
    assert again.email == "b@example.com"


def test_before_next_runs_before_a_fault_so_a_lost_answer_still_saw_the_change(stripe_standin, no_retries):
    customer = stripe_standin.add_customer()
    stripe_standin.before_next(
        "DELETE", "/v1/customers", lambda request: stripe_standin.add_customer(name="X")
    )
    stripe_standin.fail_next("DELETE", "/v1/customers", status=503)

    with pytest.raises(stripe.APIError):
        stripe.Customer.delete(customer["id"])

    assert [c["name"] for c in stripe_standin.get_all("customer")] == [None, "X"]


def test_a_failing_hook_is_reported_as_a_stand_in_error(stripe_standin):
    stripe_standin.before_next("GET", "/v1/account", lambda request: 1 / 0)

    stripe.Account.retrieve()

    assert "ZeroDivisionError" in stripe_standin.internal_errors[0]
    assert "before_next" in stripe_standin.requests[0].note
    stripe_standin.internal_errors.clear()  # expected here: keep the fixture from failing the test


# --- signing, threads, lifecycle -------------------------------------------------------------------


def test_sign_webhook_makes_a_signature_stripe_verifies():
    payload = b'{"id": "evt_1", "object": "event"}'

    headers = sign_webhook(payload, "whsec_x")

    event = stripe.Webhook.construct_event(payload, headers["Stripe-Signature"], "whsec_x")
    assert event.id == "evt_1"
    with pytest.raises(stripe.SignatureVerificationError):
        stripe.Webhook.construct_event(payload, headers["Stripe-Signature"], "whsec_other")


def test_sign_webhook_uses_the_given_timestamp():
    assert sign_webhook("{}", "whsec_x", timestamp=1700000000)["Stripe-Signature"].startswith(
        "t=1700000000,v1="
    )


def test_concurrent_requests_are_answered_one_state_at_a_time(stripe_standin):
    customer = stripe_standin.add_customer()
    stripe_standin.add_meter(event_name="overage_credits")
    barrier = threading.Barrier(8)
    outcomes = []

    def send():
        barrier.wait()
        try:
            stripe.billing.MeterEvent.create(
                event_name="overage_credits",
                payload={"stripe_customer_id": customer["id"], "value": "1"},
                identifier="same-identifier",
            )
            outcomes.append("accepted")
        except stripe.InvalidRequestError:
            outcomes.append("duplicate")

    threads = [threading.Thread(target=send) for _ in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()

    assert sorted(outcomes) == ["accepted"] + ["duplicate"] * 7
    assert len(stripe_standin.meter_events) == 1


def test_a_standin_can_be_started_and_stopped_on_its_own():
    standin = StripeStandin().start()
    try:
        response = requests.get(
            standin.url + "/v1/account", headers={"Authorization": "Bearer sk_test_x"}, timeout=5
        )
        assert response.json()["object"] == "account"
    finally:
        standin.stop()
