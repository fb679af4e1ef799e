"""`python -m core` is the `bucketbuild` command."""

import sys

from core.cli import main

sys.exit(main())
