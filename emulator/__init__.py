"""The rotator's side of the local cloud, and its old name: `python -m emulator serve` goes on working.

`localcloud` is the generic local cloud; `emulator.rotator_profile` adds what the rotator needs of it
(its managed identity and its `ROTATION_*` settings) for the tests, the demo and the command.
"""
