from core.errors import InvalidRequest


class InvalidEvents(InvalidRequest):
    """Some new events of a batch are invalid; details.events lists {index, fields} per bad event."""

    message = "Some events are invalid; nothing was stored."

    def __init__(self, problems: list[dict], *, unknown_fields: bool):
        super().__init__(details={"events": problems})
        # Precedence: a batch with an unknown field answers unknown_field.
        self.code = "unknown_field" if unknown_fields else "invalid_request"
