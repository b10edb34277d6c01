"""The documented limits (docs/limits.md), read from the docs themselves.

A refusal is correct only when docs/limits.md lists it: each row of its table names a limit
and gives the pattern (a regular expression in backticks) that the refusal message matches,
and its scope: `layer` (the message must name the refused layer, as 'name') or `model` (a
limit of the whole model, such as not fitting the board). The docs are the one source: a new
refusal is not correct until somebody documents it there.
"""
from __future__ import annotations

import re
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path

LIMITS_DOC = Path(__file__).resolve().parents[2] / "docs" / "limits.md"
ROW = re.compile(r"^\|\s*(?P<id>[a-z0-9-]+)\s*\|(?P<what>[^|]*)\|\s*(?P<scope>layer|model)\s*\|\s*`(?P<pattern>[^`]+)`\s*\|\s*$")


@dataclass(frozen=True)
class Limit:
    id: str
    what: str
    scope: str                 # "layer" or "model"
    pattern: re.Pattern


def parse_limits(text: str) -> tuple[Limit, ...]:
    """The limit rows of a docs/limits.md text (other lines are prose)."""
    limits = []
    for line in text.splitlines():
        match = ROW.match(line.strip())
        if match:
            # A table cell escapes "|" as "\|": in the pattern it is the regex's alternation.
            pattern = re.compile(match["pattern"].replace("\\|", "|"))
            limits.append(Limit(match["id"], match["what"].strip(), match["scope"], pattern))
    return tuple(limits)


@lru_cache(maxsize=1)
def documented_limits() -> tuple[Limit, ...]:
    if not LIMITS_DOC.is_file():
        raise FileNotFoundError(f"{LIMITS_DOC} is missing: the fuzzer judges refusals against it")
    return parse_limits(LIMITS_DOC.read_text())


def matching_limit(message: str, layer_names, limits=None) -> Limit | None:
    """The documented limit a refusal message is, or None (an undocumented refusal: a bug)."""
    for limit in limits if limits is not None else documented_limits():
        if not limit.pattern.search(message):
            continue
        if limit.scope == "model" or any(f"'{name}'" in message for name in layer_names):
            return limit
    return None


def judge_refusal(message: str, layer_names) -> bool:
    return matching_limit(message, layer_names) is not None
