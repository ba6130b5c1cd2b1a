"""`python -m app` runs the Hearth command line, same as `hearth`."""

import sys

from app.cli import main

sys.exit(main())
