"""The old name of the local cloud, kept so that `python -m emulator serve` goes on working.

The package is `localcloud`; this one only forwards the command line to it.
"""
