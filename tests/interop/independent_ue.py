"""Independent UE for a MIKEY-TICKET keyed MSRP chat room, written from the RFCs + PROFILE.md.

Like ``independent_mikey`` this is test-only code that shares nothing with ``focus/``, ``ue/``,
``kms_client/`` or ``mikey/``: it exists so that a second reading of RFC 3261 (SIP), RFC 8866 /
RFC 4975 §8 / RFC 6135 / RFC 4567 (SDP), RFC 4975 / RFC 7701 / RFC 3862 (MSRP, CPIM) and
RFC 4279 (TLS-PSK) checks the product the way an outside implementer would.

It runs as two processes, because no single local interpreter has everything it needs:

* the *signalling half* (class :class:`IndependentUE`) runs in the test's Python 3.11, where
  ``cryptography`` is installed for ``independent_mikey``'s AES-CM. It asks the KMS for a
  ticket (PROFILE §3–§4, raw ``http.client``), writes the SDP offer and the SIP INVITE by hand,
  sends ACK and BYE, verifies the TRANSFER_RESP and derives the TLS PSK (PROFILE §7);
* the *media half* (``python3.13 independent_ue.py msrp``) uses only the standard library:
  Python 3.11's ``ssl`` has no PSK callbacks, 3.13's has (``set_psk_client_callback``) but no
  ``cryptography``. It opens the TLS 1.2 PSK connection with an empty identity (PROFILE §9,
  RFC 4279 §5.1) to the first hop of the focus's ``a=path``, binds it with an empty SEND
  (RFC 4975 §5.4/§7.1, RFC 6135), sends CPIM-wrapped messages and answers relayed SENDs.

It dials in (:meth:`IndependentUE.join`, MIKEY initiator) or answers the focus's dial-out
INVITE (:meth:`IndependentUE.answer_dial_out`, MIKEY responder resolving at the KMS), always
taking the TLS client role (a=setup:active).

The halves talk over the child's stdin/stdout, one JSON object a line; the PSK crosses on the
child's stdin (never its argv, which other users of the machine can read). Deviations kept on
purpose, to stay small: no SIP authentication, no RFC 3263 DNS (numeric hosts only), no
listening socket for SIP over TCP (requests from the focus arrive only on our connection), no
MSRP chunking on send, and no REPORTs (Success-Report is never asked for).
"""

from __future__ import annotations

import base64
import contextlib
import json
import os
import queue
import re
import secrets
import select
import socket
import ssl
import subprocess
import sys
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

# PROFILE §9: forward-secret suites first; NULL and RSA-PSK never offered.
CIPHERS = (
    "ECDHE-PSK-CHACHA20-POLY1305:ECDHE-PSK-AES128-CBC-SHA256:"
    "DHE-PSK-AES128-GCM-SHA256:PSK-AES128-GCM-SHA256"
)
MAX_BUFFER = 1 << 20  # bytes of unframed SIP or MSRP we hold before calling the peer broken


class UEError(Exception):
    """Anything the independent UE could not do; the message says which step and why."""


# =============================================================================================
# Media half: TLS-PSK + MSRP + CPIM, standard library only (runs under Python 3.13)
# =============================================================================================


def _ident() -> str:
    """Transaction ids and Message-IDs: 80 random bits in 20 ALPHANUM (RFC 4975 §7.1, §9)."""
    return secrets.token_hex(10)


def cpim_wrap(sender: str, to: str, text: str, when: float) -> bytes:
    """A message/cpim body (RFC 3862 §2–§3): CPIM headers, blank line, the encapsulated MIME
    object (its Content-Type, blank line, content). RFC 7701 §9's examples leave out the blank
    line after the CPIM headers; RFC 3862's grammar (§3.1) requires it, so it is written."""
    stamp = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(when))  # RFC 3862 §5.4, RFC 3339
    return (
        f"From: <{sender}>\r\nTo: <{to}>\r\nDateTime: {stamp}\r\n\r\n"
        f"Content-Type: text/plain;charset=utf-8\r\n\r\n{text}"
    ).encode()


def cpim_parse(body: bytes) -> dict[str, Any]:
    """Split a message/cpim body into CPIM headers, the inner MIME headers and content.

    Strict RFC 3862 reading: two header blocks, each ended by an empty line; a header line is
    ``Name: value`` with exactly one space after the colon (§3.2). Raises UEError otherwise."""
    try:
        cpim, rest = body.split(b"\r\n\r\n", 1)
        inner, content = rest.split(b"\r\n\r\n", 1)
    except ValueError:
        raise UEError(f"message/cpim body lacks its two header blocks: {body[:200]!r}") from None

    def headers(block: bytes) -> list[tuple[str, str]]:
        out = []
        for line in block.decode("utf-8").split("\r\n"):
            name, sep, value = line.partition(": ")
            if not sep or not name or " " in name:
                raise UEError(f"malformed CPIM/MIME header line {line!r}")
            out.append((name, value))
        return out

    cpim_h, inner_h = headers(cpim), headers(inner)
    return {
        "cpim": cpim_h,
        "from": [v for k, v in cpim_h if k == "From"],
        "to": [v for k, v in cpim_h if k == "To"],
        "content_type": next((v for k, v in inner_h if k.lower() == "content-type"), None),
        "body": content.decode("utf-8"),
    }


def msrp_uri_addr(uri: str) -> tuple[str, int]:
    """Host and port of an ``msrps://host:port/session;tcp`` URI (RFC 4975 §6)."""
    m = re.fullmatch(r"msrps://(?:[^@/]*@)?(\[[^\]]+\]|[^:/;]+):(\d+)/[^;]+;tcp(?:;.*)?", uri)
    if m is None:
        raise UEError(f"not an msrps URI with host, port and ;tcp: {uri!r}")
    return m.group(1).strip("[]"), int(m.group(2))


@dataclass
class MsrpFrame:
    """One MSRP request or response (RFC 4975 §7)."""

    tid: str
    method: str | None  # None for a response
    status: int | None
    headers: list[tuple[str, str]]
    body: bytes | None
    flag: str

    def header(self, name: str) -> str | None:
        return next((v for k, v in self.headers if k.lower() == name.lower()), None)


def msrp_take(buf: bytearray) -> MsrpFrame | None:
    """Remove and return the first complete frame in *buf*, or None when more bytes are needed.

    RFC 4975 §7: start line; headers; either the end-line right after the last header (no
    body) or an empty line, the body and CRLF; end-line = seven dashes, the transaction id and
    one of ``$ + #``."""
    line_end = buf.find(b"\r\n")
    if line_end < 0:
        if len(buf) > 4096:
            raise UEError("MSRP start line too long")
        return None
    start = buf[:line_end].decode("utf-8", "replace")
    m = re.fullmatch(
        r"MSRP ([A-Za-z0-9][A-Za-z0-9.\-+%=]{3,31}) (?:([A-Z]+)|(\d{3})(?: .*)?)", start
    )
    if m is None:
        raise UEError(f"bad MSRP start line {start!r}")
    tid = m.group(1)
    marker = b"\r\n-------" + tid.encode()
    e = buf.find(marker, line_end)
    if e < 0 or len(buf) < e + len(marker) + 3:
        if len(buf) > MAX_BUFFER:
            raise UEError("MSRP frame exceeds buffer bound")
        return None
    flag = chr(buf[e + len(marker)])
    if flag not in "$+#" or buf[e + len(marker) + 1 : e + len(marker) + 3] != b"\r\n":
        raise UEError(f"bad MSRP end-line in {bytes(buf[: e + len(marker) + 3])!r}")
    head_and_body = bytes(buf[line_end + 2 : e + 2])
    del buf[: e + len(marker) + 3]
    h = head_and_body.find(b"\r\n\r\n")
    if h >= 0:
        head, body = head_and_body[: h + 2], head_and_body[h + 4 : -2]
    else:
        head, body = head_and_body, None
    headers = []
    for hl in head.decode("utf-8").split("\r\n")[:-1]:
        name, sep, value = hl.partition(":")
        if not sep:
            raise UEError(f"bad MSRP header line {hl!r}")
        headers.append((name.strip(), value.strip()))
    status = int(m.group(3)) if m.group(3) else None
    return MsrpFrame(tid, m.group(2), status, headers, body, flag)


def msrp_request(
    tid: str, method: str, headers: list[tuple[str, str]], body: bytes | None, flag: str = "$"
) -> bytes:
    """Serialise a request (RFC 4975 §7.1): Content-Type last, body framed by CRLFs."""
    out = f"MSRP {tid} {method}\r\n" + "".join(f"{k}: {v}\r\n" for k, v in headers)
    data = out.encode()
    if body is not None:
        data += b"\r\n" + body + b"\r\n"
    return data + f"-------{tid}{flag}\r\n".encode()


class MediaLeg:
    """The MSRP leg of one participant, driven by JSON lines on stdin (Python 3.13 child)."""

    def __init__(self, cfg: dict[str, Any]) -> None:
        self.cfg = cfg
        self.to_path: str = cfg["to_path"]  # the focus's a=path, whole (RFC 4975 §7.1)
        self.from_path: str = cfg["from_path"]  # our a=path from the offer
        self.buf = bytearray()
        self.chunks: dict[str, dict[str, Any]] = {}
        self.pending: dict[str, str] = {}  # tid -> caller's ref
        self.sock: ssl.SSLSocket | None = None

    @staticmethod
    def emit(**event: Any) -> None:
        sys.stdout.write(json.dumps(event) + "\n")
        sys.stdout.flush()

    def connect(self) -> None:
        """TLS 1.2 with PSK = TEK, empty identity, server hint ignored (PROFILE §9, RFC 4279).

        Config knobs for negative tests: "tls13" offers only TLS 1.3 (with identity "x", as
        RFC 8446 §4.2.11 forbids an empty one); "ciphers" replaces the suite list."""
        psk = bytes.fromhex(self.cfg["psk"])
        ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
        ctx.check_hostname = False
        ctx.verify_mode = ssl.CERT_NONE  # no certificate: the PSK authenticates (PROFILE §9)
        if self.cfg.get("tls13"):
            ctx.minimum_version = ctx.maximum_version = ssl.TLSVersion.TLSv1_3
            ctx.set_psk_client_callback(lambda _hint: ("x", psk))
        else:
            ctx.minimum_version = ctx.maximum_version = ssl.TLSVersion.TLSv1_2
            ctx.set_ciphers(self.cfg.get("ciphers") or CIPHERS)
            ctx.set_psk_client_callback(lambda _hint: (None, psk))  # None = empty identity
        if os.environ.get("SSLKEYLOGFILE"):
            ctx.keylog_filename = os.environ["SSLKEYLOGFILE"]
        self.ctx = ctx
        self.addr = msrp_uri_addr(self.to_path.split()[0])  # first hop = leftmost URI
        raw = socket.create_connection(self.addr, timeout=10)
        self.sock = ctx.wrap_socket(raw)
        self.sock.settimeout(10)
        self.emit(event="tls", version=self.sock.version(), cipher=self.sock.cipher()[0])

    def send_raw(self, data: bytes) -> None:
        assert self.sock is not None
        self.sock.sendall(data)

    def send(
        self,
        ref: str,
        body: bytes | None,
        content_type: str | None,
        cuts: list[int] | None = None,
        extra: list[tuple[str, str]] | None = None,
        to_path: str | None = None,
    ) -> str:
        """One SEND, or one chunk per piece between *cuts* (RFC 4975 §5.1, §7.1): each chunk
        its own transaction with Byte-Range, ``+`` on all but the last; the last chunk's
        response is reported under *ref*, earlier ones under ``ref.N``."""
        mid, data = _ident(), body or b""
        self.last_mid, n = mid, len(data)
        bounds = [0, *(cuts or []), n]
        tid = ""
        for i in range(len(bounds) - 1):
            tid, last = _ident(), i == len(bounds) - 2
            piece = data[bounds[i] : bounds[i + 1]]
            headers = [
                ("To-Path", to_path or self.to_path),
                ("From-Path", self.from_path),
                ("Message-ID", mid),
                ("Byte-Range", f"{bounds[i] + 1}-{bounds[i + 1]}/{n}"),
                *(extra or []),
            ]
            if content_type is not None:
                headers.append(("Content-Type", content_type))  # last header (RFC 4975 §7.1)
            self.pending[tid] = ref if last else f"{ref}.{i}"
            self.send_raw(
                msrp_request(
                    tid, "SEND", headers, piece if body is not None else None, "$" if last else "+"
                )
            )
        return tid

    def on_frame(self, f: MsrpFrame) -> None:
        if f.method is None:
            ref = self.pending.pop(f.tid, None)
            self.emit(event="response", ref=ref, tid=f.tid, status=f.status, headers=f.headers)
            return
        if f.method == "REPORT":
            self.emit(event="report", headers=f.headers)  # never answered (RFC 4975 §7.1.2)
            return
        status = 200 if f.method == "SEND" else 501
        to_path = f.header("To-Path")
        if f.method == "SEND" and to_path != self.from_path:
            status = 481  # RFC 4975 §7.3: To-Path must name our session on this connection
        report = (f.header("Failure-Report") or "yes").lower()
        # RFC 4975 §7.2: answer unless Failure-Report is "no" ("partial": errors only).
        if report == "yes" or (report == "partial" and status != 200):
            back = (f.header("From-Path") or "").split()
            back_to = back[0] if f.method == "SEND" and back else " ".join(back)
            resp = f"MSRP {f.tid} {status} {'OK' if status == 200 else 'Error'}\r\n"
            resp += f"To-Path: {back_to}\r\nFrom-Path: {self.from_path}\r\n-------{f.tid}$\r\n"
            self.send_raw(resp.encode())
        if f.method == "SEND" and status == 200:
            self.on_send(f)

    def on_send(self, f: MsrpFrame) -> None:
        """Reassemble chunks by Message-ID and Byte-Range (RFC 4975 §7.3.1) and report whole
        messages; an empty SEND (keep-alive/bind) is reported as such."""
        mid = f.header("Message-ID") or ""
        rng = re.fullmatch(r"(\d+)-(\d+|\*)/(\d+|\*)", f.header("Byte-Range") or "1-*/*")
        if rng is None:
            self.emit(event="error", msg=f"bad Byte-Range in SEND {f.headers}")
            return
        first = int(rng.group(1))
        state = self.chunks.setdefault(mid, {"parts": {}, "total": None, "ctype": None})
        if rng.group(3) != "*":
            state["total"] = int(rng.group(3))
        if f.header("Content-Type"):
            state["ctype"] = f.header("Content-Type")
        state["parts"][first] = f.body or b""
        if f.flag == "#":
            self.chunks.pop(mid)
            self.emit(event="aborted", message_id=mid)
            return
        data, pos = bytearray(), 1
        for start in sorted(state["parts"]):
            if start > pos:
                return  # a gap: wait for more chunks
            data += state["parts"][start][pos - start :]
            pos = max(pos, start + len(state["parts"][start]))
        if state["total"] is None or len(data) < state["total"]:
            return
        self.chunks.pop(mid)
        event: dict[str, Any] = {"event": "message", "message_id": mid, "ctype": state["ctype"]}
        event["raw"] = bytes(data).decode("utf-8", "replace")
        event["headers"] = f.headers  # of the last chunk
        if (
            state["total"]
            and (state["ctype"] or "").split(";")[0].strip().lower() == "message/cpim"
        ):
            try:
                event.update(cpim_parse(bytes(data)))
            except UEError as e:
                event["cpim_error"] = str(e)
        self.emit(**event)

    def run(self) -> int:
        try:
            self.connect()
        except (OSError, UEError) as e:
            self.emit(event="error", msg=f"TLS connect failed: {e!r}")
            return 6
        assert self.sock is not None
        # RFC 4975 §5.4 / RFC 6135: the active side binds; "bind_to_path" is a negative knob.
        self.send("bind", None, None, to_path=self.cfg.get("bind_to_path"))
        stdin = sys.stdin.fileno()
        line = bytearray()
        while True:
            ready = [self.sock] if self.sock.pending() else []
            if not ready:
                ready, _, _ = select.select([self.sock, stdin], [], [], 60)
            if self.sock in ready:
                try:
                    data = self.sock.recv(65536)
                except (OSError, ssl.SSLError) as e:
                    self.emit(event="closed", by="error", msg=repr(e))
                    return 6
                if not data:
                    self.emit(event="closed", by="peer")
                    return 7
                self.buf += data
                try:
                    while (f := msrp_take(self.buf)) is not None:
                        self.on_frame(f)
                except UEError as e:
                    self.emit(event="error", msg=str(e))
                    return 6
            if stdin in ready:
                chunk = os.read(stdin, 65536)
                if not chunk:
                    return self.close()
                line += chunk
                while b"\n" in line:
                    one, _, rest = bytes(line).partition(b"\n")
                    line = bytearray(rest)
                    cmd = json.loads(one)
                    if cmd.get("close"):
                        return self.close()
                    if cmd.get("probe_second"):
                        self.emit(event="probe", ref=cmd["ref"], **self.probe_second())
                        continue
                    if "raw" in cmd:  # a hand-made SEND: {"raw": body, "ctype", "cuts", "extra"}
                        raw = cmd["raw"]
                        tid = self.send(
                            cmd["ref"],
                            None if raw is None else raw.encode(),
                            cmd.get("ctype"),
                            cmd.get("cuts"),
                            [tuple(h) for h in cmd.get("extra") or []],
                        )
                    else:
                        body = cpim_wrap(
                            self.cfg["me"],
                            cmd.get("to") or self.cfg["room"],
                            cmd["text"],
                            time.time(),
                        )
                        tid = self.send(cmd["ref"], body, self.cfg.get("cpim", "message/cpim"))
                    self.emit(event="sent", ref=cmd["ref"], tid=tid, message_id=self.last_mid)

    def probe_second(self) -> dict[str, Any]:
        """Open a second connection with the same PSK to the same leg and try to bind it:
        PROFILE §9 lets a leg accept exactly one connection, RFC 4975 §5.4 answers 506."""
        try:
            s2 = self.ctx.wrap_socket(socket.create_connection(self.addr, timeout=5))
        except OSError as e:  # ssl.SSLError included
            return {"outcome": "refused", "detail": repr(e)}
        s2.settimeout(5)
        tid, buf = _ident(), bytearray()
        headers = [
            ("To-Path", self.to_path),
            ("From-Path", self.from_path),
            ("Message-ID", _ident()),
            ("Byte-Range", "1-0/0"),
        ]
        try:
            s2.sendall(msrp_request(tid, "SEND", headers, None))
            while (f := msrp_take(buf)) is None:
                data = s2.recv(65536)
                if not data:
                    return {"outcome": "closed"}
                buf += data
        except (OSError, UEError) as e:
            return {"outcome": "error", "detail": repr(e)}
        finally:
            with contextlib.suppress(OSError):
                s2.close()
        return {"outcome": "status", "status": f.status}

    def close(self) -> int:
        if self.sock is not None:
            with contextlib.suppress(OSError, ssl.SSLError):
                self.sock.close()
        self.emit(event="closed", by="us")
        return 0


def media_main() -> int:
    cfg = json.loads(sys.stdin.buffer.readline())
    return MediaLeg(cfg).run()


# =============================================================================================
# Signalling half: KMS over HTTP, SDP, SIP, MIKEY (runs under the test's Python 3.11)
# =============================================================================================


def _im() -> Any:
    from tests.interop import independent_mikey  # needs cryptography: signalling half only

    return independent_mikey


@dataclass
class KmsAccount:
    """Where and as whom the UE asks for tickets (PROFILE §3)."""

    base_url: str  # http://… or https://…/mikey-ticket/v1
    identity: str  # IDRkms
    key: bytes  # the user's PSK shared with the KMS
    ca_file: str | None = None


def kms_post(kms: KmsAccount, what: str, body: bytes, timeout: float = 10.0) -> bytes:
    """POST <base>/<what> with Content-Type application/mikey (PROFILE §3); 200 → body."""
    m = re.fullmatch(r"(https?)://([^/:]+):(\d+)(/.*)?", kms.base_url)
    if m is None:
        raise UEError(f"KMS base URL {kms.base_url!r} not understood")
    scheme, host, port, path = m.group(1), m.group(2), int(m.group(3)), m.group(4) or ""
    import http.client

    conn: http.client.HTTPConnection
    if scheme == "https":
        ctx = ssl.create_default_context(cafile=kms.ca_file)
        conn = http.client.HTTPSConnection(host, port, context=ctx, timeout=timeout)
    else:
        conn = http.client.HTTPConnection(host, port, timeout=timeout)
    try:
        conn.request(
            "POST",
            f"{path}/{what}",
            body,
            {"Content-Type": "application/mikey", "Accept": "application/mikey"},
        )
        resp = conn.getresponse()
        data = resp.read(64 * 1024 + 1)
    finally:
        conn.close()
    if resp.status != 200:
        errs: list[int] = []
        with contextlib.suppress(Exception):
            errs = _im().read_error(data)
        raise UEError(f"KMS answered {resp.status} to {what} (MIKEY ERR {errs})")
    if (resp.getheader("Content-Type") or "").split(";")[0].strip() != "application/mikey":
        raise UEError(f"KMS {what} answer has Content-Type {resp.getheader('Content-Type')!r}")
    return data


# --- SIP (RFC 3261) ---------------------------------------------------------------------------

COMPACT = {
    "i": "call-id",
    "m": "contact",
    "f": "from",
    "t": "to",
    "v": "via",
    "l": "content-length",
    "c": "content-type",
    "k": "supported",
    "s": "subject",
}


@dataclass
class SipMsg:
    start: str
    headers: list[tuple[str, str]]  # (lower-case full name, value)
    body: bytes

    @property
    def status(self) -> int | None:
        m = re.match(r"SIP/2\.0 (\d{3}) ", self.start + " ")
        return int(m.group(1)) if m else None

    @property
    def method(self) -> str | None:
        return None if self.status is not None else self.start.split(" ", 1)[0]

    def all(self, name: str) -> list[str]:
        """Every value of *name*, comma-separated lists split outside quotes and <>."""
        out = []
        for k, v in self.headers:
            if k != name:
                continue
            if name in ("via", "contact", "record-route", "route"):
                out.extend(split_commas(v))
            else:
                out.append(v)
        return out

    def get(self, name: str) -> str | None:
        values = self.all(name)
        return values[0] if values else None


def split_commas(value: str) -> list[str]:
    parts, cur, depth, quoted = [], "", 0, False
    for ch in value:
        if ch == '"':
            quoted = not quoted
        elif not quoted and ch == "<":
            depth += 1
        elif not quoted and ch == ">":
            depth -= 1
        if ch == "," and not quoted and depth == 0:
            parts.append(cur.strip())
            cur = ""
        else:
            cur += ch
    parts.append(cur.strip())
    return [p for p in parts if p]


def sip_parse(data: bytes) -> SipMsg:
    head, sep, body = data.partition(b"\r\n\r\n")
    if not sep:
        raise UEError(f"SIP message without empty line: {data[:200]!r}")
    lines = head.decode("utf-8").split("\r\n")
    headers: list[tuple[str, str]] = []
    for line in lines[1:]:
        if line[:1] in (" ", "\t") and headers:  # folded line (RFC 3261 §7.3.1)
            headers[-1] = (headers[-1][0], headers[-1][1] + " " + line.strip())
            continue
        name, colon, value = line.partition(":")
        if not colon:
            raise UEError(f"bad SIP header line {line!r}")
        key = name.strip().lower()
        headers.append((COMPACT.get(key, key), value.strip()))
    return SipMsg(lines[0], headers, body)


def uri_of(name_addr: str) -> str:
    """The URI inside a name-addr (``"x" <uri>;params``) or an addr-spec without <>."""
    m = re.search(r"<([^>]*)>", name_addr)
    return m.group(1) if m else name_addr.split(";", maxsplit=1)[0].strip()


def tag_of(name_addr: str) -> str | None:
    """The tag parameter of a From/To value (outside the <> of a name-addr)."""
    params = name_addr.rsplit(">", 1)[-1] if "<" in name_addr else name_addr
    m = re.search(r";\s*tag=([^;,\s]+)", params)
    return m.group(1) if m else None


def sip_target(uri: str) -> tuple[str, int, str]:
    """(host, port, transport) of a SIP URI with a numeric host (RFC 3263 §4 without DNS)."""
    m = re.fullmatch(r"sips?:(?:[^@]*@)?(\[[^\]]+\]|[^:;?]+)(?::(\d+))?((?:;[^?]*)?)(?:\?.*)?", uri)
    if m is None:
        raise UEError(f"SIP URI not understood: {uri!r}")
    params = {}
    for p in m.group(3).lower().split(";"):
        name, _, value = p.partition("=")
        params[name] = value
    return m.group(1).strip("[]"), int(m.group(2) or 5060), params.get("transport", "udp")


class SipTransport:
    """One UDP socket or one TCP connection to the focus, with a reader thread that hands
    responses to waiters and answers the focus's requests (BYE, OPTIONS…) by itself."""

    def __init__(self, transport: str, focus: tuple[str, int]) -> None:
        self.transport = transport
        self.focus = focus
        self.responses: queue.Queue[SipMsg] = queue.Queue()
        self.requests: list[SipMsg] = []
        self.trace: list[tuple[str, bytes]] = []
        self.closed = False
        self.on_request: Any = None
        if transport == "udp":
            self.sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
            self.sock.bind(("127.0.0.1", 0))
        elif transport == "tcp":
            self.sock = socket.create_connection(focus, timeout=10)
        else:
            raise UEError(f"transport {transport!r} not supported")
        self.sock.settimeout(0.5)
        self.local = self.sock.getsockname()[:2]
        self.thread = threading.Thread(target=self._read, daemon=True)
        self.thread.start()

    def send(self, data: bytes, dest: tuple[str, int] | None = None) -> None:
        self.trace.append((">", data))
        if self.transport == "udp":
            self.sock.sendto(data, dest or self.focus)
        else:
            self.sock.sendall(data)  # TCP: in-dialog requests reuse the connection (§18.1.1)

    def _read(self) -> None:
        buf = b""
        while not self.closed:
            try:
                if self.transport == "udp":
                    data, _ = self.sock.recvfrom(65535)
                    self._handle(data)
                    continue
                chunk = self.sock.recv(65536)
            except TimeoutError:
                continue
            except OSError:
                return
            if not chunk:
                return
            buf += chunk
            while True:
                buf = buf.lstrip(b"\r\n")  # keep-alive CRLFs (RFC 5626 §3.5.1)
                end = buf.find(b"\r\n\r\n")
                if end < 0:
                    if len(buf) > MAX_BUFFER:
                        return
                    break
                m = re.search(rb"(?im)^(?:content-length|l)[ \t]*:[ \t]*(\d+)", buf[: end + 2])
                if m is None:
                    return  # RFC 3261 §18.3: Content-Length is mandatory on streams
                total = end + 4 + int(m.group(1))
                if len(buf) < total:
                    break
                self._handle(buf[:total])
                buf = buf[total:]

    def _handle(self, data: bytes) -> None:
        self.trace.append(("<", data))
        try:
            msg = sip_parse(data)
        except (UEError, UnicodeDecodeError):
            return
        if msg.status is not None:
            self.responses.put(msg)
            return
        self.requests.append(msg)
        if self.on_request is not None:
            self.on_request(msg)

    def close(self) -> None:
        self.closed = True
        with contextlib.suppress(OSError):
            self.sock.close()


def sip_response_to(req: SipMsg, status: int, reason: str) -> bytes:
    """A body-less response copying Via, From, To, Call-ID, CSeq (RFC 3261 §8.2.6.2)."""
    lines = [f"SIP/2.0 {status} {reason}"]
    lines += [f"Via: {v}" for v in req.all("via")]
    to = req.get("to") or ""
    if tag_of(to) is None and status != 100:
        to += f";tag={_ident()[:10]}"
    lines += [
        f"From: {req.get('from')}",
        f"To: {to}",
        f"Call-ID: {req.get('call-id')}",
        f"CSeq: {req.get('cseq')}",
        "Content-Length: 0",
    ]
    return ("\r\n".join(lines) + "\r\n\r\n").encode()


# --- SDP (RFC 8866, RFC 4975 §8, RFC 6135, RFC 4567, RFC 7701 §8) ----------------------------


def build_offer(
    path: str,
    key_mgmt: bytes | None,
    session_id: int,
    setup: str = "active",
    port: int = 9,
    chatroom: str = "private-messages",
    variants: frozenset[str] = frozenset(),
) -> str:
    """The offer of an MSRP-over-TLS endpoint: port 9 when active (RFC 6135 §4.2.2, RFC 4145),
    else the listening port; CPIM only at top level (RFC 7701 §5), key-mgmt at media level
    (PROFILE §8); *key_mgmt* None leaves a=key-mgmt out (a negative test). a=chatroom declares
    the RFC 7701 §8 extensions we support: private messages (we receive them like any other
    SEND), not nicknames (we never send NICKNAME)."""
    km = "" if key_mgmt is None else f"a=key-mgmt:mikey {base64.b64encode(key_mgmt).decode()}\r\n"
    cpim = "Message/CPIM" if "mixed-case-types" in variants else "message/cpim"
    session_km = km if "session-key-mgmt" in variants else ""
    sdp = (
        "v=0\r\n"
        f"o=- {session_id} 1 IN IP4 127.0.0.1\r\n"
        "s=-\r\n"
        "c=IN IP4 127.0.0.1\r\n"
        "t=0 0\r\n"
        f"{session_km}"
        f"m=message {port} TCP/TLS/MSRP *\r\n"
        f"a=accept-types:{cpim}\r\n"
        "a=accept-wrapped-types:text/plain\r\n"
        f"a=path:{path}\r\n"
        f"a=setup:{setup}\r\n"
        f"a=chatroom{':' if chatroom else ''}{chatroom}\r\n"
        f"{'' if session_km else km}"
    )
    # RFC 8866 §5: lines end in CRLF, but parsers should also accept a bare LF.
    return sdp.replace("\r\n", "\n") if "lf-sdp" in variants else sdp


@dataclass
class Answer:
    """What the UE needs from the focus's SDP answer."""

    port: int
    proto: str
    path: str
    setup: str | None
    accept_types: list[str]
    chatroom: str | None
    key_mgmt: bytes
    media_level_key_mgmt: bool
    lines: list[str] = field(default_factory=list)


def parse_answer(sdp: str) -> Answer:
    """Pick the first m=message line and its attributes; key-mgmt from media level, else from
    session level (RFC 4567 §3.1: media level overrides session level)."""
    lines = [ln for ln in sdp.replace("\r\n", "\n").split("\n") if ln]
    session: dict[str, list[str]] = {}
    media: dict[str, list[str]] | None = None
    mline = None
    for ln in lines:
        if not re.fullmatch(r"[a-z]=.*", ln):
            raise UEError(f"bad SDP line {ln!r}")
        if ln.startswith("m="):
            if mline is not None:
                break  # only the first m-line is ours
            mline, media = ln, {}
            continue
        if ln.startswith("a="):
            name, _, value = ln[2:].partition(":")
            (media if media is not None else session).setdefault(name, []).append(value)
    if mline is None or media is None:
        raise UEError("SDP answer has no m-line")
    m = re.fullmatch(r"m=message (\d+) (\S+) (.+)", mline)
    if m is None:
        raise UEError(f"answer m-line is not m=message: {mline!r}")
    km = media.get("key-mgmt") or session.get("key-mgmt") or []
    mikey = [v.strip().split(" ", 1) for v in km]
    mikey_data = [d[1] for d in mikey if len(d) == 2 and d[0] == "mikey"]
    if len(mikey_data) != 1:
        raise UEError(f"answer needs exactly one a=key-mgmt:mikey, has {km}")
    try:
        key_mgmt = base64.b64decode(mikey_data[0].strip(), validate=True)
    except ValueError as e:
        raise UEError("a=key-mgmt data is not base64") from e
    if len(media.get("path", [])) != 1:
        raise UEError("answer needs exactly one media-level a=path (RFC 4975 §8.1)")
    return Answer(
        port=int(m.group(1)),
        proto=m.group(2),
        path=media["path"][0].strip(),
        setup=(media.get("setup") or session.get("setup") or [None])[0],
        accept_types=" ".join(media.get("accept-types", [])).split(),
        chatroom=(media.get("chatroom") or [None])[0],
        key_mgmt=key_mgmt,
        media_level_key_mgmt="key-mgmt" in media,
        lines=lines,
    )


# --- the UE ------------------------------------------------------------------------------------


class IndependentUE:
    """Join a room: ticket, INVITE with a TRANSFER_INIT, ACK, TLS-PSK + MSRP child, chat, BYE."""

    def __init__(
        self,
        *,
        identity: str,
        room: str,
        kms: KmsAccount,
        focus: tuple[str, int],
        transport: str = "udp",
        python313: str | None = None,
        wait: float = 20.0,
        setup: str = "active",
        sip_from: str | None = None,
        key_mgmt: bool = True,
        chatroom: str = "private-messages",
        variants: frozenset[str] = frozenset(),
        prf: int = 0,
    ) -> None:
        """*setup* "actpass" listens on a real port (RFC 6135 §4.2.2) but still expects the
        focus to answer passive (PROFILE §8); *sip_from* puts another URI than the MIKEY
        identity in the SIP From; *key_mgmt* False sends the offer without a=key-mgmt.
        *variants* are legal ways of writing the same thing that an outside UE may use:
        "compact" SIP header names (RFC 3261 §7.3.3), a "folded" To header (§7.3.1),
        "session-key-mgmt" (PROFILE §8), "mixed-case-types" Message/CPIM (RFC 2045 §5.1),
        "lf-sdp" line ends (RFC 8866 §5). *prf* 1 picks the 256-bit suite (PROFILE §2)."""
        self.identity, self.room, self.kms, self.focus = identity, room, kms, focus
        if python313 is None:
            # Only the 3.11 parent looks the interpreter up; the 3.13 child (run with -I)
            # never reaches this and cannot import the tests package.
            from tests.peers import python313 as find_python313

            python313 = find_python313()
        self.transport_name, self.python313, self.wait = transport, python313, wait
        self.sip: SipTransport | None = None
        self.events: list[dict[str, Any]] = []
        self._events_cv = threading.Condition()
        self.child: subprocess.Popen[bytes] | None = None
        self.child_err: list[str] = []
        self.call_id = f"{_ident()}@127.0.0.1"
        self.local_tag = _ident()[:12]
        self.remote_tag: str | None = None
        self.remote_target: str | None = None
        self.route_set: list[str] = []
        self.cseq = 0
        self.invite_cseq = 0
        self.ack: bytes | None = None
        self.ack_dest: tuple[str, int] | None = None
        self.answer: Answer | None = None
        self.answer_msg: SipMsg | None = None
        self.final: SipMsg | None = None  # the INVITE's final response
        self.offer: str | None = None
        self.hung_up = threading.Event()
        self.acked = threading.Event()
        self.incoming: queue.Queue[SipMsg] = queue.Queue()
        self.last_invite_response: bytes | None = None
        self.setup, self.sip_from, self.with_key_mgmt = setup, sip_from or identity, key_mgmt
        self.chatroom, self.variants, self.prf = chatroom, variants, prf
        self.listener: socket.socket | None = None
        self.msrp_port = 9  # RFC 6135 §4.2.2: port 9 when active
        if setup == "actpass":
            self.listener = socket.socket()
            self.listener.bind(("127.0.0.1", 0))
            self.listener.listen(1)
            self.msrp_port = int(self.listener.getsockname()[1])
        self.path = f"msrps://127.0.0.1:{self.msrp_port}/{_ident()};tcp"

    # -- KMS + MIKEY ------------------------------------------------------------------------

    def get_ticket(self, now: float) -> tuple[Any, bytes]:
        im = _im()
        suite = im.SUITES[self.prf]
        req = im.build_request_init(
            suite=suite,
            psk=self.kms.key,
            csb_id=int.from_bytes(os.urandom(4), "big"),
            now=now,
            randri=os.urandom(suite.key_len),
            id_i=self.identity.encode(),
            id_kms=self.kms.identity.encode(),
            id_rs=[self.room.encode()],
        )
        resp = kms_post(self.kms, "request", req)
        return im.read_request_resp(resp, req, self.kms.key, time.time()), req

    # -- SIP ----------------------------------------------------------------------------------

    def _via(self, branch: str) -> str:
        assert self.sip is not None
        host, port = self.sip.local
        rport = ";rport" if self.sip.transport == "udp" else ""  # RFC 3581
        return f"SIP/2.0/{self.sip.transport.upper()} {host}:{port};branch={branch}{rport}"

    def _contact(self) -> str:
        assert self.sip is not None
        host, port = self.sip.local
        user = re.sub(r"^sips?:([^@]*)@.*$", r"\1", self.identity)
        t = ";transport=tcp" if self.sip.transport == "tcp" else ""
        return f"<sip:{user}@{host}:{port}{t}>"

    def _request(
        self,
        method: str,
        ruri: str,
        branch: str,
        cseq: int,
        extra: list[str],
        body: bytes = b"",
        to_tag: str | None = None,
    ) -> bytes:
        to = f"<{self.room}>" + (f";tag={to_tag}" if to_tag else "")
        if "folded" in self.variants:
            to = f"\r\n  {to}"  # LWS with a line break (RFC 3261 §7.3.1)
        lines = [
            f"{method} {ruri} SIP/2.0",
            f"Via: {self._via(branch)}",
            "Max-Forwards: 70",
            *[f"Route: {r}" for r in self.route_set],
            f"From: <{self.sip_from}>;tag={self.local_tag}",
            f"To: {to}",
            f"Call-ID: {self.call_id}",
            f"CSeq: {cseq} {method}",
            *extra,
            f"Content-Length: {len(body)}",
        ]
        if "compact" in self.variants:  # RFC 3261 §7.3.3 / §20
            short = {
                "Via": "v",
                "From": "f",
                "To": "t",
                "Call-ID": "i",
                "Contact": "m",
                "Content-Type": "c",
                "Content-Length": "l",
            }
            for i, line in enumerate(lines[1:], start=1):
                name, _, value = line.partition(": ")
                if name in short:
                    lines[i] = f"{short[name]}: {value}"
        return ("\r\n".join(lines) + "\r\n\r\n").encode() + body

    def _dest(self) -> tuple[str, int]:
        """Next hop for in-dialog requests: first Route, else the remote target (§12.2.1.1)."""
        target = uri_of(self.route_set[0]) if self.route_set else self.remote_target
        assert target is not None
        host, port, _transport = sip_target(target)
        return host, port

    @staticmethod
    def _via_dest(msg: SipMsg) -> tuple[str, int] | None:
        """Where a response goes: the top Via's sent-by, corrected by received and rport
        (RFC 3261 §18.2.2, RFC 3581 §4)."""
        via = msg.get("via") or ""
        m = re.search(r"SIP/2\.0/\w+ ([^;:\s]+):?(\d+)?", via)
        dest = (m.group(1), int(m.group(2) or 5060)) if m else None
        rec = re.search(r";received=([^;]+)", via)
        rport = re.search(r";rport=(\d+)", via)
        if dest and rec:
            dest = (rec.group(1), dest[1])
        if dest and rport:
            dest = (dest[0], int(rport.group(1)))
        return dest

    def _on_request(self, msg: SipMsg) -> None:
        """Reader thread: a dial-out INVITE is queued for :meth:`answer_dial_out` after a
        100 Trying (a retransmission gets our last response again, RFC 3261 §17.2.1); ACK
        ends our 2xx retransmissions; BYE/OPTIONS/NOTIFY get 200, anything else 501."""
        assert self.sip is not None
        dest = self._via_dest(msg)
        if msg.method == "ACK":
            self.acked.set()
            return
        if msg.method == "INVITE":
            if msg.get("call-id") == self.call_id and self.last_invite_response is not None:
                self.sip.send(self.last_invite_response, dest)
                return
            if self.remote_tag is None and self.incoming.empty():
                self.call_id = msg.get("call-id") or ""
                self.last_invite_response = sip_response_to(msg, 100, "Trying")
                self.sip.send(self.last_invite_response, dest)
                self.incoming.put(msg)
                return
            self.sip.send(sip_response_to(msg, 486, "Busy Here"), dest)
            return
        if msg.method == "BYE":
            self.hung_up.set()
        status, reason = (
            (200, "OK") if msg.method in ("BYE", "OPTIONS", "NOTIFY") else (501, "Not Implemented")
        )
        self.sip.send(sip_response_to(msg, status, reason), dest)

    def _final(self, branch: str, method: str, resend: bytes, dest: tuple[str, int]) -> SipMsg:
        """Wait for the final response of our client transaction; over UDP retransmit with
        Timer A/E (T1 = 0.5 s doubling, non-INVITE capped at T2 = 4 s) until a provisional
        (INVITE) or final response arrives (RFC 3261 §17.1.1.2, §17.1.2.2)."""
        assert self.sip is not None
        deadline = time.monotonic() + self.wait
        interval, next_send, retransmit = 0.5, time.monotonic() + 0.5, self.sip.transport == "udp"
        while True:
            left = deadline - time.monotonic()
            if left <= 0:
                raise UEError(f"no final response to {method} within {self.wait} s")
            try:
                r = self.sip.responses.get(
                    timeout=min(left, max(next_send - time.monotonic(), 0.01))
                )
            except queue.Empty:
                if retransmit and time.monotonic() >= next_send:
                    self.sip.send(resend, dest)
                    interval = interval * 2 if method == "INVITE" else min(interval * 2, 4.0)
                    next_send = time.monotonic() + interval
                continue
            vias = r.all("via")
            if not vias or f"branch={branch}" not in vias[0]:
                if r.status and 200 <= r.status < 300 and self.ack and method != "INVITE":
                    self.sip.send(self.ack, self.ack_dest)  # a retransmitted 200 to INVITE
                continue
            if (r.get("cseq") or "").split()[-1:] != [method]:
                continue
            assert r.status is not None
            if r.status < 200:
                if method == "INVITE":
                    retransmit = False  # Proceeding: no more retransmissions (§17.1.1.2)
                continue
            return r

    def invite(self) -> SipMsg:
        """Send the INVITE with the offer, wait for the final response and ACK it."""
        im = _im()
        assert self.sip is not None
        ob, _ = self.get_ticket(time.time())
        self.ob = ob
        suite = im.SUITES[self.prf]
        self.transfer_init = im.build_transfer_init(
            ob=ob,
            suite=suite,
            csb_id=int.from_bytes(os.urandom(4), "big"),
            now=time.time(),
            randri=os.urandom(suite.key_len),
            id_i=self.identity.encode(),
            id_r=self.room.encode(),
        )
        self.offer = build_offer(
            self.path,
            self.transfer_init if self.with_key_mgmt else None,
            int.from_bytes(os.urandom(4), "big"),
            self.setup,
            self.msrp_port,
            self.chatroom,
            self.variants,
        )
        self.cseq += 1
        self.invite_cseq = self.cseq
        branch = "z9hG4bK" + _ident()
        invite = self._request(
            "INVITE",
            self.room,
            branch,
            self.cseq,
            [
                f"Contact: {self._contact()}",
                "Content-Type: application/sdp",
                "Accept: application/sdp",
                "Allow: INVITE, ACK, BYE, CANCEL, OPTIONS",
            ],
            self.offer.encode(),
        )
        self.sip.send(invite)
        final = self._final(branch, "INVITE", invite, self.focus)
        self.final = final
        to = final.get("to") or ""
        if final.status is not None and final.status >= 300:
            # ACK for a non-2xx final: same branch, part of the INVITE transaction (§17.1.1.3)
            ack = self._request("ACK", self.room, branch, self.cseq, [], to_tag=tag_of(to))
            self.sip.send(ack)
            warning = final.get("warning")
            raise UEError(f"INVITE answered {final.start!r} Warning: {warning!r}")
        self.remote_tag = tag_of(to)
        contacts = final.all("contact")
        if self.remote_tag is None or len(contacts) != 1:
            raise UEError(
                f"2xx without To tag or without one Contact: {final.start} {final.headers}"
            )
        self.remote_target = uri_of(contacts[0])
        self.route_set = list(reversed(final.all("record-route")))  # UAC: reversed (§12.1.2)
        # ACK for a 2xx: a new transaction, to the remote target / route set (§13.2.2.4).
        self.ack = self._request(
            "ACK",
            self.remote_target,
            "z9hG4bK" + _ident(),
            self.invite_cseq,
            [],
            to_tag=self.remote_tag,
        )
        self.ack_dest = self._dest() if self.sip.transport == "udp" else None
        self.sip.send(self.ack, self.ack_dest)
        self.answer_msg = final
        return final

    def check_answer(self, final: SipMsg) -> bytes:
        """Check the SDP answer and the TRANSFER_RESP; return the TLS PSK (PROFILE §7–§8)."""
        im = _im()
        ctype = (final.get("content-type") or "").split(";")[0].strip().lower()
        if ctype != "application/sdp":
            raise UEError(f"2xx body has Content-Type {ctype!r}")
        a = parse_answer(final.body.decode("utf-8"))
        self.answer = a
        if a.port == 0 or a.proto != "TCP/TLS/MSRP":
            raise UEError(f"answer refused or changed the m-line: port {a.port} {a.proto}")
        if a.setup != "passive":  # RFC 4145 §4.1: the answer to "active" is "passive"
            raise UEError(f"answer to a=setup:active must be passive, got {a.setup!r}")
        if "message/cpim" not in [t.lower() for t in a.accept_types]:
            raise UEError(f"focus answer lacks accept-types message/cpim: {a.accept_types}")
        resp = a.key_mgmt
        m = im.verify_transfer_resp(resp, self.transfer_init, self.ob.mpki, time.time())
        sdp_ids = [p["data"] for p in m.all(im.PT_GEN_EXT) if p["gtype"] == 1]
        for ids in sdp_ids:  # PROFILE §5 / RFC 4567 §7.1: bidding-down protection
            if ids != b"mikey":
                raise UEError(f"TRANSFER_RESP SDP IDs {ids!r} do not match the SDP")
        return im.initiator_psk(self.transfer_init, resp, self.ob.tgk)

    # -- media child ----------------------------------------------------------------------------

    def _pump(self) -> None:
        assert self.child is not None and self.child.stdout is not None
        for raw in iter(self.child.stdout.readline, b""):
            with self._events_cv:
                self.events.append(json.loads(raw))
                self._events_cv.notify_all()
        with self._events_cv:
            self.events.append({"event": "exited"})
            self._events_cv.notify_all()

    def _pump_err(self) -> None:
        assert self.child is not None and self.child.stderr is not None
        for raw in iter(self.child.stderr.readline, b""):
            self.child_err.append(raw.decode("utf-8", "replace").rstrip())

    def wait_event(self, match: Any, timeout: float | None = None) -> dict[str, Any]:
        deadline = time.monotonic() + (timeout or self.wait)
        with self._events_cv:
            seen = 0
            while True:
                for ev in self.events[seen:]:
                    if match(ev):
                        return ev
                seen = len(self.events)
                left = deadline - time.monotonic()
                if left <= 0:
                    raise UEError(
                        f"event not seen in time; events: {self.events}; stderr: {self.child_err}"
                    )
                self._events_cv.wait(min(left, 0.5))

    def start_media(self, psk: bytes, **overrides: Any) -> None:
        assert self.answer is not None
        self.child = subprocess.Popen(
            [self.python313, "-I", str(Path(__file__).resolve()), "msrp"],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
        )
        threading.Thread(target=self._pump, daemon=True).start()
        threading.Thread(target=self._pump_err, daemon=True).start()
        cfg = {
            "psk": psk.hex(),
            "to_path": self.answer.path,
            "from_path": self.path,
            "me": self.identity,
            "room": self.room,
            "cpim": "Message/CPIM" if "mixed-case-types" in self.variants else "message/cpim",
            **overrides,
        }
        self._command(cfg)

    def _command(self, obj: dict[str, Any]) -> None:
        assert self.child is not None and self.child.stdin is not None
        self.child.stdin.write(json.dumps(obj).encode() + b"\n")
        self.child.stdin.flush()

    # -- public API -----------------------------------------------------------------------------

    def listen(self) -> tuple[str, int]:
        """Open the SIP socket before anyone calls us; return its address (the focus's
        outbound proxy in the dial-out test, so that its INVITE reaches us)."""
        if self.sip is None:
            self.sip = SipTransport(self.transport_name, self.focus)
            self.sip.on_request = self._on_request
        return (str(self.sip.local[0]), int(self.sip.local[1]))

    def answer_dial_out(self, timeout: float = 30.0) -> dict[str, Any]:
        """Take the focus's INVITE as MIKEY responder (PROFILE §5–§6, RFC 6043 §4.2.2–§4.2.3):
        resolve the ticket at the KMS, verify the TRANSFER_INIT and that IDRi is the SIP
        From, answer 200 with a=setup:active and the TRANSFER_RESP, wait for the ACK (our
        2xx retransmitted meanwhile, RFC 3261 §13.3.1.4), then connect and bind the leg."""
        im = _im()
        self.listen()
        assert self.sip is not None
        try:
            invite = self.incoming.get(timeout=timeout)
        except queue.Empty:
            raise UEError(f"no INVITE from the focus within {timeout} s") from None
        offer = parse_answer(invite.body.decode("utf-8"))  # same shape: m-line + attributes
        if offer.proto != "TCP/TLS/MSRP" or offer.setup != "actpass":
            raise UEError(f"dial-out offer {offer.proto} setup {offer.setup}: expected actpass")
        init = offer.key_mgmt
        caller = uri_of(invite.get("from") or "")
        now = time.time()
        i = im.decode(init)
        suite = im.SUITES[i.prf]
        randrr = os.urandom(suite.key_len)
        resolve = im.build_resolve_init(
            transfer_init=init,
            suite=suite,
            psk=self.kms.key,
            csb_id=int.from_bytes(os.urandom(4), "big"),
            now=now,
            randrr=randrr,
            id_r=self.identity.encode(),
            id_kms=self.kms.identity.encode(),
        )
        mpki, tgk, spi = im.read_resolve_resp(
            kms_post(self.kms, "resolve", resolve), resolve, self.kms.key, time.time()
        )
        m = im.verify_transfer_init(init, mpki, time.time())
        if im.identity(m, im.ROLE_I).decode() != caller:  # PROFILE §1
            raise UEError(f"IDRi {im.identity(m, im.ROLE_I)!r} is not the SIP From {caller!r}")
        if im.identity(m, im.ROLE_R).decode() != self.identity:
            raise UEError("TRANSFER_INIT is not for us")
        resp = im.build_transfer_resp(
            transfer_init=init,
            mpki=mpki,
            spi=spi,
            now=time.time(),
            randrr=randrr,
            id_r=self.identity.encode(),
        )
        psk = im.responder_psk(init, tgk, randrr)
        self.transfer_init, self.transfer_resp = init, resp
        # Dialog state as UAS (RFC 3261 §12.1.1).
        self.remote_tag = tag_of(invite.get("from") or "")
        self.remote_target = uri_of(invite.get("contact") or "")
        self.route_set = invite.all("record-route")
        self.room = caller
        answer_sdp = build_offer(
            self.path, resp, int.from_bytes(os.urandom(4), "big"), "active", 9, self.chatroom
        ).encode()
        lines = [
            "SIP/2.0 200 OK",
            *[f"Via: {v}" for v in invite.all("via")],
            *[f"Record-Route: {r}" for r in self.route_set],
            f"From: {invite.get('from')}",
            f"To: {invite.get('to')};tag={self.local_tag}",
            f"Call-ID: {invite.get('call-id')}",
            f"CSeq: {invite.get('cseq')}",
            f"Contact: {self._contact()}",
            "Content-Type: application/sdp",
            f"Content-Length: {len(answer_sdp)}",
        ]
        ok = ("\r\n".join(lines) + "\r\n\r\n").encode() + answer_sdp
        self.last_invite_response = ok
        dest = self._via_dest(invite)
        self.sip.send(ok, dest)
        deadline, interval = time.monotonic() + self.wait, 0.5
        while not self.acked.wait(interval):
            if time.monotonic() > deadline:
                raise UEError("no ACK for our 200 OK")
            if self.sip.transport == "udp":
                self.sip.send(ok, dest)
                interval = min(interval * 2, 4.0)
        self.answer = offer  # the focus's side of the media: its a=path
        self.start_media(psk)
        ev = self.wait_event(
            lambda e: (
                (e.get("ref") == "bind" and e["event"] == "response")
                or e["event"] in ("error", "exited", "closed")
            )
        )
        if ev.get("status") != 200:
            raise UEError(f"binding SEND not answered 200: {ev}; stderr {self.child_err}")
        return ev

    def join(self, expect_bound: bool = True, **media: Any) -> dict[str, Any]:
        """Ticket, INVITE/200/ACK, TLS-PSK, binding SEND; return the bind response event.

        *media* goes into the child's config (negative knobs: psk_xor, tls13, ciphers,
        bind_to_path); with *expect_bound* False the first decisive event is returned as is."""
        self.sip = SipTransport(self.transport_name, self.focus)
        self.sip.on_request = self._on_request
        final = self.invite()
        psk = self.check_answer(final)
        if media.pop("psk_xor", False):
            psk = bytes([psk[0] ^ 1]) + psk[1:]
        self.start_media(psk, **media)
        ev = self.wait_event(
            lambda e: (
                (e.get("ref") == "bind" and e["event"] == "response")
                or e["event"] in ("error", "exited", "closed")
            )
        )
        if expect_bound and ev.get("status") != 200:
            raise UEError(f"binding SEND not answered 200: {ev}; stderr {self.child_err}")
        return ev

    def say(self, text: str, to: str | None = None) -> dict[str, Any]:
        """Send one CPIM-wrapped text message; return the MSRP response event."""
        ref = _ident()
        self._command({"text": text, "to": to, "ref": ref})
        return self.wait_event(lambda e: e.get("ref") == ref and e["event"] == "response")

    def send_raw(
        self,
        body: bytes | None,
        content_type: str | None,
        cuts: list[int] | None = None,
        extra: list[tuple[str, str]] | None = None,
        expect_response: bool = True,
    ) -> dict[str, Any]:
        """Send a hand-made SEND (optionally chunked at *cuts*, with *extra* headers before
        Content-Type); return the last chunk's response event plus the Message-ID, or with
        *expect_response* False (Failure-Report: no) just the "sent" event."""
        ref = _ident()
        self._command(
            {
                "raw": None if body is None else body.decode(),
                "ctype": content_type,
                "cuts": cuts,
                "extra": extra,
                "ref": ref,
            }
        )
        sent = self.wait_event(lambda e: e.get("ref") == ref and e["event"] == "sent")
        if not expect_response:
            return sent
        ev = self.wait_event(lambda e: e.get("ref") == ref and e["event"] == "response")
        return {**ev, "message_id": sent["message_id"]}

    def probe_second_connection(self) -> dict[str, Any]:
        ref = _ident()
        self._command({"probe_second": True, "ref": ref})
        return self.wait_event(lambda e: e.get("ref") == ref and e["event"] == "probe")

    def wait_message(self, text: str) -> dict[str, Any]:
        return self.wait_event(lambda e: e["event"] == "message" and e.get("body") == text)

    def messages(self) -> list[dict[str, Any]]:
        with self._events_cv:
            return [e for e in self.events if e["event"] == "message"]

    def leave(self) -> SipMsg:
        """BYE (RFC 3261 §15.1.1), then close the MSRP leg; return the BYE's final response.

        BYE goes first: a focus may take the closed TLS connection as the participant gone
        and end the dialog itself (RFC 4975 §5.4), after which our BYE would meet a 481."""
        assert self.sip is not None and self.remote_target is not None
        self.cseq += 1
        branch = "z9hG4bK" + _ident()
        bye = self._request(
            "BYE", self.remote_target, branch, self.cseq, [], to_tag=self.remote_tag
        )
        dest = self._dest() if self.sip.transport == "udp" else self.focus
        self.sip.send(bye, dest)
        final = self._final(branch, "BYE", bye, dest)
        if self.child is not None and self.child.poll() is None:
            with contextlib.suppress(OSError):
                self._command({"close": True})
            with contextlib.suppress(subprocess.TimeoutExpired):
                self.child.wait(timeout=5)
        return final

    def close(self) -> None:
        if self.child is not None and self.child.poll() is None:
            self.child.kill()
            self.child.wait(timeout=5)
        if self.sip is not None:
            self.sip.close()
        if self.listener is not None:
            self.listener.close()

    def sip_trace(self) -> str:
        if self.sip is None:
            return ""
        return "\n".join(f"{d} {m.decode('utf-8', 'replace')}" for d, m in self.sip.trace)


__all__ = ["IndependentUE", "KmsAccount", "UEError", "cpim_parse", "cpim_wrap", "msrp_take"]

if __name__ == "__main__":
    if sys.argv[1:] == ["msrp"]:
        sys.exit(media_main())
    sys.exit("usage: independent_ue.py msrp  (the media half; see the module docstring)")
