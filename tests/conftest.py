"""Fixtures every test directory shares live in tests/support/fixtures.py."""

pytest_plugins = ["tests.support.fixtures"]
