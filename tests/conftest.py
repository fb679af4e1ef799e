"""Shared pytest configuration: fixtures live in tests/fixtures/ and are registered here."""

pytest_plugins = [
    "tests.fixtures.registry",
    "tests.fixtures.aws",
    "tests.fixtures.gcs",
    "tests.fixtures.pubsub",
    "tests.fixtures.functions",
]
