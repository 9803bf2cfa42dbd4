"""Rows that are written once and never changed or deleted: the audit log, the credit ledger."""

from typing import TYPE_CHECKING, Any, NoReturn

from django.db import models

# The mixin goes before models.Model in a model's bases; the type checker sees the Model behind it.
if TYPE_CHECKING:
    _ModelBase = models.Model
else:
    _ModelBase = object


class AppendOnly(_ModelBase):
    """A model mixin (put it before models.Model): saving an existing row or deleting one raises."""

    def save(self, *args: Any, **kwargs: Any) -> None:
        if self.pk is not None:
            raise ValueError(f"{type(self)._meta.verbose_name_plural} are append-only.".capitalize())
        super().save(*args, **kwargs)

    def delete(self, *args: Any, **kwargs: Any) -> NoReturn:
        raise ValueError(f"{type(self)._meta.verbose_name_plural} are append-only.".capitalize())
