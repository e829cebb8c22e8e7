"""Reuse the in-memory KMS fixture of the kms tests."""

from tests.kms.conftest import kms  # noqa: F401
