"""Rows that are written once and never changed or deleted: the audit log, the credit ledger."""

from typing import Any


class AppendOnly:
    """A model mixin (put it before models.Model): saving an existing row or deleting one raises."""

    pk: Any

    def save(self, *args: Any, **kwargs: Any) -> None:
        if self.pk is not None:
            raise ValueError(f"{type(self)._meta.verbose_name_plural} are append-only.".capitalize())  # type: ignore[attr-defined]
        super().save(*args, **kwargs)  # type: ignore[misc]

    def delete(self, *args: Any, **kwargs: Any) -> Any:
        raise ValueError(f"{type(self)._meta.verbose_name_plural} are append-only.".capitalize())  # type: ignore[attr-defined]
