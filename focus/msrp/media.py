"""Media types and accept-types matching (RFC 4975 §8.6).

``a=accept-types`` and ``a=accept-wrapped-types`` list format entries: ``type/subtype``,
``type/*`` or ``*``.  Types and subtypes are tokens compared case-insensitively, and "a
format-entry with one or more parameters is assumed to match the same format-entry with no
parameters" (§8.6), so parameters never decide a match.
"""

from __future__ import annotations

import functools
from collections.abc import Iterable
from typing import Self

import attrs

from ._grammar import MEDIA_TYPE_RE
from .errors import MsrpParseError

__all__ = ["MediaType", "accepts", "is_cpim"]


@attrs.frozen
class MediaType:
    """A ``type/subtype`` with its parameters text (kept verbatim, compared never)."""

    type: str
    subtype: str
    params: str = ""

    @classmethod
    def parse(cls, text: str) -> Self:
        match = MEDIA_TYPE_RE.fullmatch(text.strip())
        if match is None:
            raise MsrpParseError("malformed media type")
        return cls(match[1], match[2], match[3])

    @property
    def essence(self) -> str:
        """``type/subtype`` lower-cased, the part that matching looks at."""
        return f"{self.type}/{self.subtype}".lower()

    def __str__(self) -> str:
        return f"{self.type}/{self.subtype}{self.params}"


def _entry_matches(entry: str, essence: str) -> bool:
    entry = entry.split(";", 1)[0].strip().lower()
    if entry == "*":
        return True
    if entry.endswith("/*"):
        return essence.split("/", 1)[0] == entry[:-2]
    return entry == essence


def accepts(format_list: Iterable[str], content_type: str) -> bool:
    """True if ``content_type`` matches an entry of an accept-types list (§8.6).

    A malformed ``content_type`` is not acceptable (never raises).
    """
    if type(format_list) is tuple:
        return _accepts(format_list, content_type)
    return _accepts(tuple(format_list), content_type)


@functools.lru_cache(maxsize=1024)
def _accepts(format_list: tuple[str, ...], content_type: str) -> bool:
    # Cached (bounded): a room checks the same accept-types against the same one or two
    # types for every recipient of every message (RFC 7701 §6.1 fan-out).
    essence = _essence(content_type)
    if essence is None:
        return False
    return any(_entry_matches(entry, essence) for entry in format_list)


@functools.lru_cache(maxsize=256)
def _essence(content_type: str) -> str | None:
    """``type/subtype`` of a Content-Type, or None when malformed; cached (bounded)
    because every message sent and received checks the same few types."""
    try:
        return MediaType.parse(content_type).essence
    except MsrpParseError:
        return None


def is_cpim(content_type: str | None) -> bool:
    """True for ``Message/CPIM`` in any letter case (RFC 3862 §7.1, RFC 7701 §6.3)."""
    if content_type is None:
        return False
    try:
        return MediaType.parse(content_type).essence == "message/cpim"
    except MsrpParseError:
        return False
