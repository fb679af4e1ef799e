"""Secret build args in layer cache keys: a slow, salted hash stands for each value.

A key is a public tag, so a secret must not be testable against it with one sha256 per guess.
These tests check the replacement itself (pure) and, through real cached builds, that it is
used, that keys stay deterministic (a second build hits) and that the secret is nowhere in the
cache.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
from collections.abc import Iterator
from pathlib import Path

import pytest

from core.cache.keys import chain_key
from core.cache.secret_inputs import (
    SCRYPT_N,
    SCRYPT_P,
    SCRYPT_R,
    SecretInputs,
    secret_salt,
    slow_digest,
)
from tests.cache.conftest import CachedBuilds, cached_steps
from tests.fixtures.images import BaseImages
from tests.fixtures.registry import RegistryServer, make_client
from tests.security.secretscan import Needles, blobs

SECRET = "tok-5f1c0e7a9b2d4c6e"
SALT = secret_salt("127.0.0.1:5000/cache/app")


def _inputs(value: str) -> dict[str, object]:
    return {"env": {"TOKEN": value, "DERIVED": f"pre-{value}", "PATH": "/bin"},
            "build_args": [["TOKEN", value]], "user": "", "mounts": [None]}


def test_secret_values_are_replaced_wherever_they_occur() -> None:
    hidden = SecretInputs([SECRET], salt=SALT).hide(_inputs(SECRET))
    text = json.dumps(hidden)
    assert SECRET not in text
    marker = f"<secret:{slow_digest(SECRET, SALT)}>"
    assert hidden["env"] == {"TOKEN": marker, "DERIVED": f"pre-{marker}", "PATH": "/bin"}
    assert hidden["build_args"] == [["TOKEN", marker]]


def test_the_replacement_is_deterministic_and_depends_on_value_and_salt() -> None:
    def key(value: str, salt: bytes = SALT) -> str:
        return chain_key("parent", "RUN", SecretInputs([value], salt=salt).hide(_inputs(value)))

    assert key(SECRET) == key(SECRET)  # a new build computes the same key: it hits
    assert key(SECRET) != key(SECRET + "x")
    assert key(SECRET) != key(SECRET, secret_salt("other/cache"))


def test_without_secrets_the_inputs_and_keys_are_unchanged() -> None:
    inputs = _inputs("not secret")
    assert SecretInputs([], salt=SALT).hide(inputs) is inputs
    assert SecretInputs(["", "absent-value"], salt=SALT).hide(inputs) == json.loads(
        json.dumps(inputs))


def test_the_hash_is_scrypt_with_the_documented_cost() -> None:
    expected = hashlib.scrypt(SECRET.encode(), salt=SALT, n=2**14, r=8, p=1,
                              maxmem=64 << 20, dklen=32).hex()
    assert (SCRYPT_N, SCRYPT_R, SCRYPT_P) == (2**14, 8, 1)
    assert slow_digest(SECRET, SALT) == expected
    assert slow_digest(SECRET, SALT) != hashlib.sha256(SALT + SECRET.encode()).hexdigest()


# --- through real builds ----------------------------------------------------------------

needs_root = pytest.mark.skipif(os.geteuid() != 0 or shutil.which("skopeo") is None,
                                reason="needs root for the chroot RUN sandbox, and skopeo")
DOCKERFILE = """\
FROM {base}
ARG TOKEN
ARG DERIVED=pre-$TOKEN
COPY app.txt /app.txt
RUN test -n "$TOKEN" && echo "$DERIVED" | wc -c > /length
"""
#        FROM   ARG    ARG    COPY   RUN
ALL_HIT = [False, False, False, True, True]


@pytest.fixture()
def oci_cached(tmp_path: Path, registry: RegistryServer,
               base_images: BaseImages) -> Iterator[CachedBuilds]:
    client = make_client(registry.host)
    try:
        yield CachedBuilds(tmp_path, registry, client, base_images, f"oci:{tmp_path / 'cache'}")
    finally:
        client.close()


@needs_root
def test_a_secret_build_arg_still_hits_the_cache_and_stays_out_of_it(
        oci_cached: CachedBuilds) -> None:
    cached = oci_cached
    cached.write({"app.txt": "app\n", "Dockerfile": DOCKERFILE.format(base=cached.busybox)})
    secret = {"build_args": {"TOKEN": SECRET}, "secret_build_args": frozenset({"TOKEN"})}
    assert cached_steps(cached.build(**secret))[3:] == [False, False]
    assert cached_steps(cached.build(**secret)) == ALL_HIT  # the key is deterministic
    changed = {**secret, "build_args": {"TOKEN": SECRET + "-new"}}
    assert cached_steps(cached.build(**changed))[3:] == [True, False]  # the RUN sees it
    stored = list(blobs(cached.tmp / "cache"))
    assert Needles({"secret": SECRET}).hits(stored, jwt=False) == []
    assert any(b"test -n" in data for _, data in stored)  # the search sees the history
    # the same value, not declared secret: its key is the plain one, so it cannot hit
    assert cached_steps(cached.build(build_args={"TOKEN": SECRET}))[3:] == [True, False]

