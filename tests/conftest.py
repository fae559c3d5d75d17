"""Settings every test shares. Fixtures every test directory shares live in
tests/support/fixtures.py."""

import os

pytest_plugins = ["tests.support.fixtures"]

# Every node the tests run, in this process or in a child, refuses store calls from its event
# loop (see node/gateway.py): a blocking call that slipped past the gateway fails its test.
os.environ["WORKWORK_STRICT_IO"] = "1"
