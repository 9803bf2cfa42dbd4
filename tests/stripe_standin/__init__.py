"""A local, stateful stand-in for the Stripe API, for the test suite (see README.md here)."""
