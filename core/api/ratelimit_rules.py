"""The rate limits' configuration (`API_RATE_LIMITS`), read by the settings at start-up."""

from dataclasses import dataclass

CLASSES = ("check", "write", "read")
DEFAULT_LIMITS = "check=12000/60,write=1200/60,read=1200/60"


@dataclass(frozen=True)
class Limit:
    requests: int
    seconds: int


def parse_limits(text: str) -> dict[str, Limit]:
    """`class=N/S,…` (unnamed classes keep their defaults) or `off` (no limits). ValueError if bad."""
    if text.strip().lower() == "off":
        return {}
    limits = {} if text == DEFAULT_LIMITS else parse_limits(DEFAULT_LIMITS)
    for item in filter(None, (part.strip() for part in text.split(","))):
        name, _, rate = item.partition("=")
        requests, _, seconds = rate.partition("/")
        if name not in CLASSES or not requests.isdigit() or not seconds.isdigit() or int(seconds) < 1:
            raise ValueError(
                f"API_RATE_LIMITS: {item!r} is not `class=requests/seconds` with a class of "
                f"{', '.join(CLASSES)}."
            )
        limits[name] = Limit(int(requests), int(seconds))
    return limits
