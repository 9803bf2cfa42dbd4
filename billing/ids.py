"""The public ids of credit grants and holds."""

from core.ids import new_public_id


def new_grant_id() -> str:
    return new_public_id("cg")


def new_hold_id() -> str:
    return new_public_id("hold")
