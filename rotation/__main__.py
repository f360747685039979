"""`python -m rotation …`: the command line (`rotation.cli`)."""

import sys

from rotation.cli import main

if __name__ == "__main__":
    sys.exit(main())
