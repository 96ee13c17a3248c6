"""`python -m jupiter.cli` runs the `jupiter` command."""

import sys

from jupiter.cli import main

sys.exit(main())
