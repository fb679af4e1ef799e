"""Shared pytest configuration: fixtures live in tests/fixtures/ and are registered here."""

pytest_plugins = ["tests.fixtures.registry"]
pytest_plugins += ["tests.fixtures.aws", "tests.fixtures.gcs"]
