from django.core.management.base import BaseCommand
from django.db import transaction

from billing.services.accounts import open_organization
from orgs.models import Organization, Role
from orgs.services.audit import Actor
from orgs.services.invitations import create_invitation
from orgs.services.memberships import upsert_membership
from orgs.services.products import ensure_product, issue_api_key

PRODUCTS = {"red": "Red", "blue": "Blue", "green": "Green"}

ORGS = [
    {
        "name": "Acme Robotics",
        "slug": "acme",
        "billing_email": "billing@acme.example",
        "members": [
            ("u_ada", "ada@acme.example", Role.OWNER),
            ("u_grace", "grace@acme.example", Role.BILLING),
        ],
        "invite": ("linus@acme.example", Role.MEMBER),
    },
    {
        "name": "Globex",
        "slug": "globex",
        "billing_email": "ap@globex.example",
        "members": [
            ("u_hank", "hank@globex.example", Role.OWNER),
            ("u_mona", "mona@globex.example", Role.ADMIN),
            ("u_otto", "otto@globex.example", Role.MEMBER),
        ],
        "invite": None,
    },
    {
        "name": "Ada's sandbox",
        "slug": "ada-personal",
        "billing_email": "ada@acme.example",
        "personal": True,
        "members": [("u_ada", "ada@acme.example", Role.OWNER)],
        "invite": None,
    },
]


class Command(BaseCommand):
    help = "Load demo products, organizations and members (idempotent), and print a demo API key."

    def handle(self, *args, **options):
        actor = Actor.system("seed_demo")
        with transaction.atomic():
            products = {slug: ensure_product(slug=slug, name=name)[0] for slug, name in PRODUCTS.items()}
            product_actor = Actor.for_product(products["red"])
            for spec in ORGS:
                if Organization.objects.filter(slug=spec["slug"]).exists():
                    continue
                (owner_id, owner_email, _), *others = spec["members"]
                org = open_organization(
                    name=spec["name"],
                    slug=spec["slug"],
                    billing_email=spec["billing_email"],
                    personal=spec.get("personal", False),
                    owner_user_id=owner_id,
                    owner_email=owner_email,
                    actor=actor,
                )
                for user_id, email, role in others:
                    upsert_membership(org=org, user_id=user_id, role=role, email=email, actor=product_actor)
                if spec["invite"]:
                    email, role = spec["invite"]
                    create_invitation(org=org, email=email, role=role, actor=product_actor)
            _, key = issue_api_key(product=products["red"], name="demo", actor=actor)
        self.stdout.write(f"Demo data loaded: {len(PRODUCTS)} products, {len(ORGS)} organizations.")
        self.stdout.write(f"API key for the product red (shown once): {key}")
