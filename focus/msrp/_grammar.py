"""RFC 4975 §9 (Figure 11) grammar fragments, written down once as regular expressions.

Fragments are ``str`` patterns; compiled ``bytes`` patterns are used on the parser's hot
path (start line, end-line) and ``str`` patterns on decoded header values.
"""

from __future__ import annotations

import re

# ident = ALPHANUM 3*31ident-char ; ident-char = ALPHANUM / "." / "-" / "+" / "%" / "="
IDENT = r"[A-Za-z0-9][A-Za-z0-9.\-+%=]{3,31}"
# token (RFC 4975 §9): %x21 / %x23-27 / %x2A-2B / %x2D-2E / %x30-39 / %x41-5A / %x5E-7E
TOKEN = r"[!#$%&'*+\-.0-9A-Z^_`a-z{|}~]+"  # noqa: S105 (a grammar, not a password)
QUOTED_STRING = r'"(?:[^"\\\r\n]|\\\\|\\")*"'

IDENT_RE = re.compile(IDENT)
TOKEN_RE = re.compile(TOKEN)

# req-start  = pMSRP SP transact-id SP method CRLF        (method = 1*UPALPHA)
# resp-start = pMSRP SP transact-id SP status-code [SP comment] CRLF
START_LINE_RE = re.compile(
    rb"MSRP (" + IDENT.encode() + rb") (?:([A-Z]+)|([0-9]{3})(?: ([^\r\n]*))?)"
)

# Byte-Range = "Byte-Range:" SP range-start "-" range-end "/" total
BYTE_RANGE_RE = re.compile(r"([0-9]{1,18})-([0-9]{1,18}|\*)/([0-9]{1,18}|\*)")
# Status = "Status:" SP namespace SP status-code [SP comment]
STATUS_RE = re.compile(r"([0-9]{3}) ([0-9]{3})(?: (.*))?")

# media-type = type "/" subtype *( ";" gen-param )
MEDIA_TYPE_RE = re.compile(
    rf"({TOKEN})/({TOKEN})((?:\s*;\s*{TOKEN}(?:=(?:{TOKEN}|{QUOTED_STRING}))?)*)"
)

# hname = ALPHA *token  (lenient: any token, checked to start with a letter)
HEADER_NAME_RE = re.compile(rb"[A-Za-z][!#$%&'*+\-.0-9A-Z^_`a-z|~]*")

# MSRP-URI = msrp-scheme "://" authority ["/" session-id] ";" transport *( ";" URI-parameter)
# session-id = 1*( unreserved / "+" / "=" / "/" )
# unreserved = ALPHA / DIGIT / "-" / "." / "_" / "~"
# authority (RFC 3986) = [ userinfo "@" ] host [ ":" port ]; ";" is excluded from reg-name
# here because it starts the transport parameter.
MSRP_URI_RE = re.compile(
    r"(?P<scheme>[Mm][Ss][Rr][Pp][Ss]?)://"
    r"(?:(?P<userinfo>[A-Za-z0-9\-._~%!$&'()*+,=]*)@)?"  # no ":": no passwords (§6)
    r"(?P<host>\[[0-9A-Fa-f:.]+\]|[A-Za-z0-9\-._~%!$&'()*+,=]+)"
    r"(?::(?P<port>[0-9]{1,5}))?"
    r"(?:/(?P<session>[A-Za-z0-9\-._~+=/]+))?"
    r";(?P<transport>[A-Za-z0-9]+)"
    r"(?P<params>(?:;" + TOKEN + r"(?:=" + TOKEN + r")?)*)"
)
