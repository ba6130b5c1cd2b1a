"""The bundle's entry point: the `hearth` command, as `app.cli:main`.

The window's index process (multiprocessing "spawn") starts this same
executable; `main` calls `multiprocessing.freeze_support()` first, which runs
the child's work and exits before any argument is read as Hearth's."""

import sys

from app.cli import main

if __name__ == "__main__":
    sys.exit(main())
