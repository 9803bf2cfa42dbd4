"""An honest, stateful Stripe stand-in: a local HTTP server for the test suite.

It answers the Stripe API calls this project and dj-stripe 2.11 make, with real-shaped JSON in the
pinned API version (builders in objects.py), keeps state between calls, records every request, and
can inject faults. Tests point the stripe library at it (`stripe.api_base = standin.url`, done by the
`stripe_standin` fixture) and assert on what reached it. See README.md beside this file.

What "honest" means here: it answers the way Stripe documents (error shapes and statuses, list
envelopes and pagination, idempotency keys, meter-event rules); where Stripe's behaviour is not
documented the choice is written down in README.md; parameters it does not model are refused with
Stripe's `parameter_unknown` error rather than silently ignored.

The package, split by topic: `core` (the `StripeStandin` class: state, recording, faults, request
handling, the HTTP server), `storage` (lookup, rendering, `expand[]`, lists), `routes` (the route
table), `seeding` (the test-side helpers that seed state), `forms` (request decoding, webhook
signatures, errors, parameter readers), `records` (recorded requests and faults), and one mixin per
resource family with its endpoints: `customers`, `catalog`, `meters`, `checkout`, `subscriptions`,
`invoices`, `events`.
"""

from tests.stripe_standin.server.core import StripeStandin
from tests.stripe_standin.server.forms import StripeError, decode_form, sign_webhook
from tests.stripe_standin.server.records import Fault, RecordedRequest

__all__ = ["Fault", "RecordedRequest", "StripeError", "StripeStandin", "decode_form", "sign_webhook"]
