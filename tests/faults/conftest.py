"""One KMS front per module; one deployment (real twistd kms + twistd focus) per test."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest
import pytest_twisted

from bench.deployment import Deployment

from ._rig import KmsFront


@pytest.fixture
def front() -> Iterator[KmsFront]:
    # The real KMS URL is only known once the deployment exists; filled in by `dep`.
    f = KmsFront(target="")
    f.start()
    yield f
    pytest_twisted.blockon(f.stop())


@pytest.fixture
def dep(front: KmsFront) -> Iterator[Deployment]:
    settings: dict[str, Any] = dict(
        accounts=60,
        # Below the ephemeral range, and away from the bench's 20000-24999.
        port_range=(25000, 25019),
        max_queued_bytes=256 * 1024,
        kms_timeout=1.0,
        kms_retries=0,
        leg_timeout=3.0,
        focus_kms_url=front.url,
        sip_idle_timeout=2.0,
    )
    deployment = Deployment(**settings)
    front.target = deployment.kms_url
    with deployment:
        yield deployment
