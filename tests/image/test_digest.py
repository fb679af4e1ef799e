"""Digests: computing, validating, and hashing while streaming."""

from __future__ import annotations

import hashlib
import io

import pytest

from core.errors import ImageError
from core.image.digest import (
    DigestingReader,
    DigestingWriter,
    Hasher,
    digest_hex,
    parse_digest,
    sha256_digest,
)

EMPTY = "sha256:e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855"


def test_sha256_digest() -> None:
    assert sha256_digest(b"") == EMPTY
    assert sha256_digest(b"abc") == "sha256:" + hashlib.sha256(b"abc").hexdigest()


@pytest.mark.parametrize(("text", "parts"), [
    (EMPTY, ("sha256", EMPTY[7:])),
    ("sha512:" + "0" * 128, ("sha512", "0" * 128)),
    ("blake3:" + "ab" * 32, ("blake3", "ab" * 32)),
])
def test_parse_valid(text: str, parts: tuple[str, str]) -> None:
    assert parse_digest(text) == parts


@pytest.mark.parametrize(("text", "message"), [
    ("", "expected ALGORITHM:HEX"),
    ("e3b0c442", "expected ALGORITHM:HEX"),
    ("Sha256:" + "0" * 64, "bad algorithm 'Sha256'"),
    (":" + "0" * 64, "bad algorithm ''"),
    ("sha256:" + "0" * 63, "sha256 needs lowercase hex of 64 characters"),
    ("sha256:" + "g" * 64, "sha256 needs lowercase hex"),
    ("sha512:" + "0" * 64, "sha512 needs lowercase hex of 128 characters"),
    ("blake3:", "bad encoded part"),
    ("blake3:a/b", "bad encoded part"),
])
def test_parse_invalid(text: str, message: str) -> None:
    with pytest.raises(ImageError, match=message):
        parse_digest(text)


def test_digest_hex() -> None:
    assert digest_hex(EMPTY) == EMPTY[7:]
    with pytest.raises(ImageError, match="only sha256"):
        digest_hex("sha512:" + "0" * 128)


def test_streaming_helpers() -> None:
    hasher = Hasher()
    for chunk in (b"hello ", b"", b"world"):
        hasher.update(chunk)
    assert (hasher.digest, hasher.size) == (sha256_digest(b"hello world"), 11)

    target = io.BytesIO()
    writer = DigestingWriter(target)
    assert writer.write(b"hello ") == 6
    writer.write(b"world")
    assert target.getvalue() == b"hello world"
    assert (writer.digest, writer.size) == (hasher.digest, 11)

    reader = DigestingReader(io.BytesIO(b"hello world"))
    assert reader.read(5) + reader.read() == b"hello world"
    assert (reader.digest, reader.size) == (hasher.digest, 11)
