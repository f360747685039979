"""`python -m emulator serve …`: the local cloud with the rotator's identity, printing the rotator's line."""

import sys

from emulator.rotator_profile import RotatorCloud
from localcloud.__main__ import main

if __name__ == "__main__":
    sys.exit(main(prog="python -m emulator", make_cloud=RotatorCloud))
