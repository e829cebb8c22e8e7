"""The RFC 4475 messages fed to the UA core as datagrams: what a UAS answers (§3.1-§3.4)."""

from __future__ import annotations

from pathlib import Path

import pytest

from focus.sip.message import Response, parse_message
from focus.sip.transaction import Target

from .harness import Net, Recorder

FIXTURES = Path(__file__).parent / "fixtures" / "rfc4475"
SOURCE = Target("UDP", "192.0.2.99", 5060)
DOMAINS = (
    "chair-dnrc.example.com", "example.com", "example.net", "example.org", "company.com",
    "registrar.example.com", "host5.example.net", "192.0.2.1", "sip.example.com",
)  # fmt: skip

# (fixture, final status our UAS sends, or None when RFC 4475 leaves nothing to answer).
# wsinv carries a To tag, so it is a mid-dialog request for a dialog we do not have (481);
# mpart01 is a MESSAGE, which the test application accepts whatever its body type.
EXPECTED = [
    ("wsinv", 481), ("intmeth", 501), ("esc01", 200), ("escnull", 405), ("esc02", 501),
    ("lwsdisp", 200), ("longreq", 200), ("dblreq", 405), ("semiuri", 200),
    ("transports", 200), ("mpart01", 200), ("unreason", None), ("noreason", None),
    ("badinv01", 400), ("clerr", 400), ("ncl", 400), ("scalar02", 400), ("scalarlg", None),
    ("quotbal", 400), ("ltgtruri", 400), ("lwsruri", 400), ("lwsstart", 400), ("trws", 400),
    ("escruri", 400), ("baddate", 200), ("regbadct", 400), ("badaspec", 400), ("baddn", 400),
    ("badvers", 505), ("mismatch01", 400), ("mismatch02", 400), ("bigcode", None),
    ("badbranch", 200), ("insuf", 400), ("unkscm", 416), ("novelsc", 416), ("unksm2", 405),
    ("bext01", 420), ("invut", 415), ("regaut01", 405), ("multi01", 400), ("mcl01", 400),
    ("bcast", None), ("zeromf", 200), ("cparam01", 405), ("cparam02", 405),
    ("regescrt", 405), ("sdp01", 406), ("inv2543", 200),
]  # fmt: skip


@pytest.mark.parametrize(("name", "status"), EXPECTED)
def test_uas_answers_torture_message(name: str, status: int | None) -> None:
    """Each RFC 4475 message gets the answer the RFC expects from a UAS (or none)."""
    net = Net()
    ua = net.add("192.0.2.1", 5060, Recorder(body=b"v=0\r\n"), domains=DOMAINS)
    data = (FIXTURES / f"{name}.dat").read_bytes()
    if name == "baddn":
        data += b"\r\n"  # the archive lost this message's final CRLF
    ua.datagram_received(data, SOURCE, 0.0)
    sent = [parse_message(c.data) for c in ua.drain()]  # type: ignore[union-attr]
    finals = [m.status for m in sent if isinstance(m, Response) and m.status >= 200]
    assert finals == ([] if status is None else [status])
    if status == 200 and data.startswith(b"INVITE"):
        assert len(ua.dialogs) == 1  # the 2xx created the dialog (§12.1.1)
    for m in sent:
        assert isinstance(m, Response)
        if m.status == 400:
            assert (m.headers.get("Warning") or "").startswith("399 ")


def test_every_fixture_is_expected() -> None:
    """The table above covers every fixture."""
    assert {p.stem for p in FIXTURES.glob("*.dat")} == {n for n, _ in EXPECTED}
