"""The bench's own framing for the bare relay: a 4-octet big-endian length, then the
payload.  A zero-length frame is the relay's acknowledgement to a sender (it plays the
role MSRP's 200 OK plays for the focus, so both relays are driven with the same window).

Payload layout of a chat frame (both relays): 8 octets send time
(``time.monotonic_ns()``, CLOCK_MONOTONIC is shared by every process on the host), 4
octets sender number, then padding up to the frame size.
"""

from __future__ import annotations

import struct

LENGTH = struct.Struct("!I")
STAMP = struct.Struct("!QI")
ACK = LENGTH.pack(0)
MAX_FRAME = 1 << 20


def split_frames(buffer: bytearray) -> tuple[list[bytes], int]:
    """Complete frames at the start of ``buffer`` (prefix included) and the number of
    octets they take; the caller deletes those octets."""
    frames = []
    offset = 0
    size = len(buffer)
    while size - offset >= 4:
        (length,) = LENGTH.unpack_from(buffer, offset)
        if length > MAX_FRAME:
            raise ValueError(f"frame of {length} octets")
        end = offset + 4 + length
        if end > size:
            break
        frames.append(bytes(buffer[offset:end]))
        offset = end
    return frames, offset


def payload(size: int, sender: int, now_ns: int) -> bytes:
    """A chat payload of ``size`` octets (at least 12) stamped with ``now_ns``."""
    return STAMP.pack(now_ns, sender) + b"x" * max(0, size - STAMP.size)
