"""RFC 3261 §25.1 ABNF fragments as regular expressions, written down once.

Header values are matched after unfolding (§7.3.1: a CRLF followed by whitespace is
replaced by one SP), so LWS here is plain SP/HTAB.  Text is decoded from UTF-8 with
``surrogateescape`` so that arbitrary octets survive a parse/serialise round trip.
"""

from __future__ import annotations

import re

# --- basic rules (§25.1) --------------------------------------------------------------
ALPHANUM = r"A-Za-z0-9"
MARK = r"\-_.!~*'()"
UNRESERVED = ALPHANUM + MARK
ESCAPED = r"%[0-9A-Fa-f]{2}"
WSP = r"[ \t]"
LWS = r"[ \t]+"
SWS = r"[ \t]*"
TOKEN_CHARS = r"A-Za-z0-9\-.!%*_+`'~"  # noqa: S105 - grammar, not a secret
TOKEN = rf"[{TOKEN_CHARS}]+"
# word = 1*(alphanum / "-" / "." / "!" / "%" / "*" / "_" / "+" / "`" / "'" / "~" /
#        "(" / ")" / "<" / ">" / ":" / "\" / DQUOTE / "/" / "[" / "]" / "?" / "{" / "}")
WORD = r"[A-Za-z0-9\-.!%*_+`'~()<>:\\\"/\[\]?{}]+"
# quoted-string = SWS DQUOTE *(qdtext / quoted-pair) DQUOTE; qdtext excludes CR/LF.
QUOTED_STRING = r'"(?:[^"\\\r\n]|\\[^\r\n])*"'

# --- SIP URI (§19.1.1, §25.1) ----------------------------------------------------------
USER_UNRESERVED = r"&=+$,;?/"
USER = rf"(?:[{UNRESERVED}{USER_UNRESERVED}]|{ESCAPED})+"
PASSWORD = rf"(?:[{UNRESERVED}&=+$,]|{ESCAPED})*"
HOSTNAME = (
    r"(?:[A-Za-z0-9](?:[A-Za-z0-9\-]*[A-Za-z0-9])?\.)*[A-Za-z](?:[A-Za-z0-9\-]*[A-Za-z0-9])?\.?"
)
IPV4 = r"\d{1,3}\.\d{1,3}\.\d{1,3}\.\d{1,3}"
IPV6_REFERENCE = r"\[[0-9A-Fa-f:.]+\]"
HOST = rf"(?:{IPV6_REFERENCE}|{IPV4}|{HOSTNAME})"
PORT = r"\d{1,5}"
PARAMCHAR = rf"(?:[\[\]/:&+${UNRESERVED}]|{ESCAPED})"
URI_PARAM = rf"{PARAMCHAR}+(?:={PARAMCHAR}+)?"
HNVCHAR = rf"(?:[\[\]/?:+${UNRESERVED}]|{ESCAPED})"
URI_HEADER = rf"{HNVCHAR}+={HNVCHAR}*"

SIP_URI_RE = re.compile(
    rf"(?P<scheme>[Ss][Ii][Pp][Ss]?):"
    rf"(?:(?P<user>{USER})(?::(?P<password>{PASSWORD}))?@)?"
    rf"(?P<host>{HOST})(?::(?P<port>{PORT}))?"
    rf"(?P<params>(?:;{URI_PARAM})*)"
    rf"(?:\?(?P<headers>{URI_HEADER}(?:&{URI_HEADER})*))?"
)
# RFC 3966 tel URI: global or local number followed by parameters.
TEL_URI_RE = re.compile(
    r"(?P<scheme>[Tt][Ee][Ll]):(?P<number>\+?[0-9A-Fa-f*#\-.()]+)"
    rf"(?P<params>(?:;{URI_PARAM})*)"
)
# absoluteURI = scheme ":" ( hier-part / opaque-part ), without whitespace or brackets.
ABSOLUTE_URI_RE = re.compile(
    r"(?P<scheme>[A-Za-z][A-Za-z0-9+\-.]*):(?P<rest>[A-Za-z0-9\-_.!~*'();/?:@&=+$,%\[\]#]+)"
)

# --- start lines (§7.1, §7.2) ----------------------------------------------------------
# Exactly one SP between the elements and none at the end (RFC 4475 §3.1.2.9, §3.1.2.10).
REQUEST_LINE_RE = re.compile(rf"(?P<method>{TOKEN}) (?P<uri>[^ \t]+) (?P<version>SIP/\d+\.\d+)")
STATUS_LINE_RE = re.compile(r"(?P<version>SIP/\d+\.\d+) (?P<status>\d{3}) (?P<reason>[^\r\n]*)")
HEADER_NAME_RE = re.compile(TOKEN)

# --- header values ---------------------------------------------------------------------
TOKEN_RE = re.compile(TOKEN)
# Via: sent-protocol LWS sent-by *( SEMI via-params ) (§20.42, §25.1)
VIA_RE = re.compile(
    rf"(?P<name>{TOKEN}){SWS}/{SWS}(?P<version>{TOKEN}){SWS}/{SWS}(?P<transport>{TOKEN})"
    rf"{LWS}(?P<host>{HOST})(?:{SWS}:{SWS}(?P<port>{PORT}))?"
)
CSEQ_RE = re.compile(rf"(?P<seq>\d+){LWS}(?P<method>{TOKEN})")
PARAM_RE = re.compile(
    rf"{SWS};{SWS}(?P<name>{TOKEN})(?:{SWS}={SWS}(?P<value>{TOKEN}|{HOST}|{QUOTED_STRING}))?"
)
DISPLAY_NAME_RE = re.compile(rf"(?:{QUOTED_STRING}|{TOKEN}(?:{LWS}{TOKEN})*)")
