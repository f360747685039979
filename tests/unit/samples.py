"""Sample values shared by the unit tests."""

from __future__ import annotations

from datetime import UTC, datetime

NOW = datetime(2025, 1, 31, 12, 0, 0, tzinfo=UTC)
APP_ID = "11111111-2222-3333-4444-555555555555"
TENANT_ID = "99999999-8888-7777-6666-555555555555"
KEY_A = "aaaaaaaa-0000-0000-0000-000000000001"
KEY_B = "bbbbbbbb-0000-0000-0000-000000000002"
KEY_C = "cccccccc-0000-0000-0000-000000000003"
# Shaped like a real Entra secret value (40 characters, '8Q~' at positions 4-6); not a real secret.
SECRET_VALUE = "abc8Q~Zx1yW2vU3tS4rQ5pO6nM7lK8jI9hG0fE.d"
VERSION = "ee059b2bb5bc48398a53b168c6cdcb10"
