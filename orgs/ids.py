"""The public ids of organizations and invitations."""

from core.ids import new_public_id


def new_org_id() -> str:
    return new_public_id("org")


def new_invitation_id() -> str:
    return new_public_id("inv")
