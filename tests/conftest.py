"""Settings every test shares. Fixtures every test directory shares live in
tests/support/fixtures.py."""

import os

import pytest
from hypothesis import settings

pytest_plugins = ["tests.support.fixtures"]

# Every node the tests run, in this process or in a child, refuses store calls from its event
# loop (see node/gateway.py): a blocking call that slipped past the gateway fails its test.
os.environ["WORKWORK_STRICT_IO"] = "1"
# A test network: `workwork init` mints keys with no proof of work, and its config says so
# (tests/protocol/test_stamp.py tests the real difficulty).
os.environ["WORKWORK_KEY_DIFFICULTY"] = "0"
# `workwork init` turns mDNS on for a personal node: test nodes on one machine would find each
# other's (and the developer's own) nodes across tests. The tests that want it say so.
os.environ["WORKWORK_MDNS"] = "0"

# The fast loop (`scripts/test -m "not slow"`) tries fewer examples in each property test; the
# whole suite (CI) tries hypothesis's usual number, or what each test asks for.
settings.register_profile("fast", max_examples=15)


def pytest_configure(config: pytest.Config) -> None:
    if config.option.markexpr == "not slow":
        settings.load_profile("fast")
