import factory
from django.utils.text import slugify

from billing.services.accounts import open_organization
from orgs.models import Organization
from orgs.services.audit import Actor


class OrganizationFactory(factory.django.DjangoModelFactory):
    """Orgs are made the one way the service makes them: open_organization."""

    class Meta:
        model = Organization

    name = factory.Sequence(lambda n: f"Org {n}")
    billing_email = factory.LazyAttribute(lambda o: f"billing@{slugify(o.name)}.example")

    @classmethod
    def _create(cls, model_class, *args, **kwargs):
        return open_organization(**kwargs, actor=Actor.system("tests"))
