"""Regular expressions for the SDP grammar (RFC 8866 §9), written down once.

Descriptions are decoded from bytes with UTF-8 and ``surrogateescape``, so every octet
0x80-0xFF survives as a character and the byte-oriented ABNF classes translate to
character classes: ``byte-string`` is "anything but NUL, CR, LF" and ``non-ws-string`` is
"anything but controls and space".
"""

from __future__ import annotations

import re

# RFC 8866 §9: token-char = ALPHA / DIGIT / "!" / "#" / "$" / "%" / "&" / "'" / "*" / "+"
#                          / "-" / "." / "^" / "_" / "`" / "{" / "|" / "}" / "~"
TOKEN = r"[!#$%&'*+\-.^_`{|}~0-9A-Za-z]+"  # noqa: S105 - a grammar rule, not a password
# byte-string = 1*(%x01-09/%x0B-0C/%x0E-FF)
BYTE_STRING = r"[^\x00\r\n]+"
# non-ws-string = 1*(VCHAR/%x80-FF)
NON_WS_STRING = r"[^\x00-\x20\x7f]+"
DIGITS = r"[0-9]+"
INTEGER = r"[1-9][0-9]*"
TYPED_TIME = r"[0-9]+[dhms]?"
TIME = r"[1-9][0-9]{9,}"

TOKEN_RE = re.compile(TOKEN)
TEXT_RE = re.compile(r"[^\x00\r\n]*")  # text; empty tolerated (see description.py)
BYTE_STRING_RE = re.compile(BYTE_STRING)
NON_WS_RE = re.compile(NON_WS_STRING)

# o=<username> <sess-id> <sess-version> <nettype> <addrtype> <unicast-address>
ORIGIN_RE = re.compile(
    rf"({NON_WS_STRING}) ({DIGITS}) ({DIGITS}) ({TOKEN}) ({TOKEN}) ({NON_WS_STRING})"
)
# c=<nettype> <addrtype> <connection-address>
CONNECTION_RE = re.compile(rf"({TOKEN}) ({TOKEN}) ({NON_WS_STRING})")
# b=<bwtype>:<bandwidth>
BANDWIDTH_RE = re.compile(rf"({TOKEN}):({DIGITS})")
# t=<start-time> <stop-time>; start-time = time / "0"
TIME_RE = re.compile(rf"({TIME}|0) ({TIME}|0)")
# r=<repeat-interval> <typed-time> 1*(SP typed-time)
REPEAT_RE = re.compile(rf"[1-9][0-9]*[dhms]? {TYPED_TIME}(?: {TYPED_TIME})+")
# z=<time> SP ["-"] typed-time *(SP time SP ["-"] typed-time)
ZONE_RE = re.compile(rf"{TIME} -?{TYPED_TIME}(?: {TIME} -?{TYPED_TIME})*")
# k=prompt / clear:text / base64:base64 / uri:uri (obsolete, kept verbatim)
KEY_RE = re.compile(r"prompt|clear:[^\x00\r\n]+|base64:[A-Za-z0-9+/=]*|uri:[^\x00-\x20\x7f]+")
# a=<attribute-name>[:<attribute-value>]
ATTRIBUTE_RE = re.compile(rf"({TOKEN})(?::([^\x00\r\n]*))?")
# m=<media> <port>[/<integer>] <proto> 1*(SP fmt); proto = token *("/" token)
PROTO = rf"{TOKEN}(?:/{TOKEN})*"
PROTO_RE = re.compile(PROTO)
MEDIA_RE = re.compile(rf"({TOKEN}) ({DIGITS})(?:/({INTEGER}))? ({PROTO})((?: {TOKEN})+)")

# RFC 8866 §9: base64 = *base64-unit [base64-pad] (also the grammar of RFC 4567 keymgmt-data)
BASE64_RE = re.compile(r"(?:[A-Za-z0-9+/]{4})*(?:[A-Za-z0-9+/]{2}==|[A-Za-z0-9+/]{3}=)?")
