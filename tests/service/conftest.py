"""Fixtures for the service tests: an object store of either cloud with a fresh bucket."""

from __future__ import annotations

from dataclasses import dataclass

import pytest

from core.cloud.storage import ObjectStore, open_store


@dataclass(frozen=True)
class Bucket:
    store: ObjectStore
    name: str


@pytest.fixture(params=["s3", "gs"])
def bucket(request: pytest.FixtureRequest) -> Bucket:
    """A fresh versioned bucket in moto (S3) or fake-gcs-server (GCS)."""
    name = request.getfixturevalue("s3_bucket" if request.param == "s3" else "gcs_bucket")
    return Bucket(open_store(request.param), name)
