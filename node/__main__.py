"""`python -m node` runs the `workwork` command."""

import sys

from node.cli import main

sys.exit(main())
