from core.errors import InvalidRequest


class InvalidEvents(InvalidRequest):
    """Some new events of a batch are invalid; details.events lists {index, fields} per bad event."""

    message = "Some events are invalid; nothing was stored."

    def __init__(self, problems: list[dict], *, unknown_fields: bool):
        super().__init__(details={"events": problems})
        # Precedence: a batch with an unknown field answers unknown_field.
        self.code = "unknown_field" if unknown_fields else "invalid_request"

    @classmethod
    def batch_total(cls, message: str) -> "InvalidEvents":
        error = cls([], unknown_fields=False)
        error.message = "The batch's total cost for one org must stay below 10^14 credits."
        error.details = {"fields": {"events": [message]}, "max_cost": "100000000000000"}
        return error
