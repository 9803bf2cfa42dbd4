"""Public identifiers: a type prefix and random Crockford base32, never a database integer."""

import secrets

_ALPHABET = "0123456789abcdefghjkmnpqrstvwxyz"


def new_public_id(prefix: str, length: int = 24) -> str:
    """`prefix_` + `length` random base32 characters (5 bits each; 24 → 120 bits)."""
    return f"{prefix}_" + "".join(secrets.choice(_ALPHABET) for _ in range(length))
