"""The public ids of organizations and invitations."""

from core.ids import new_public_id


def new_org_id() -> str:
    return new_public_id("org")


def new_invitation_id() -> str:
    return new_public_id("inv")


def new_endpoint_id() -> str:
    return new_public_id("ep")


def new_event_id() -> str:
    return new_public_id("ev")


def new_delivery_id() -> str:
    return new_public_id("dlv")
