"""The test suite (a package, so that tests/functions never shadows the top-level functions/ package)."""
