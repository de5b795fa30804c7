"""PyInstaller entry point: the same as `python -m cnndesk`."""

import sys

from cnndesk.cli import main

if __name__ == "__main__":
    sys.exit(main())
