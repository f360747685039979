"""`python -m emulator serve …`: the same command as `python -m localcloud serve …`."""

import sys

from localcloud.__main__ import main

if __name__ == "__main__":
    sys.exit(main())
