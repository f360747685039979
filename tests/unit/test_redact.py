from __future__ import annotations

import gc
import io
import logging
from collections.abc import Iterator

import pytest

from rotation.domain.model import Sensitive
from rotation.redact import (
    MIN_SECRET_LENGTH,
    REDACTED,
    RedactingFilter,
    SecretRegistry,
    install,
    redact,
    registry,
)

from .samples import SECRET_VALUE


def test_redact_replaces_every_occurrence() -> None:
    text = f"a={SECRET_VALUE} b={SECRET_VALUE}"
    assert redact(text, [SECRET_VALUE]) == f"a={REDACTED} b={REDACTED}"


def test_redact_handles_form_encoding_and_nested_values() -> None:
    body = "client_secret=abc8Q%7EZx1yW2vU3tS4rQ5pO6nM7lK8jI9hG0fE.d&grant_type=client_credentials"
    assert redact(body, [SECRET_VALUE]) == f"client_secret={REDACTED}&grant_type=client_credentials"
    # the longer value goes first, so no tail of it survives
    assert redact("xx-secret-value-long", ["secret-value", "xx-secret-value-long"]) == REDACTED


def test_redact_ignores_empty_values_and_leaves_other_text() -> None:
    assert redact("nothing to see", ["", "absent-value"]) == "nothing to see"


def test_registry_holds_values_only_while_they_are_alive() -> None:
    local = SecretRegistry()

    class Holder:
        def __init__(self, value: str) -> None:
            self.value = value

        def reveal(self) -> str:
            return self.value

    holder = Holder("long-enough-secret")
    local.register(holder)
    local.register(Holder("short"))  # below MIN_SECRET_LENGTH: would garble ordinary text
    assert local.values() == ["long-enough-secret"]
    assert local.scrub("x long-enough-secret y") == f"x {REDACTED} y"
    del holder
    gc.collect()
    assert local.values() == [] and len(local) == 0
    assert MIN_SECRET_LENGTH == 8


def test_sensitive_values_are_scrubbed_through_the_global_registry() -> None:
    secret = Sensitive(SECRET_VALUE + "-global")
    assert registry.scrub(f"oops {secret.reveal()}") == f"oops {REDACTED}"


@pytest.fixture
def captured() -> Iterator[tuple[logging.Logger, io.StringIO]]:
    stream = io.StringIO()
    handler = logging.StreamHandler(stream)
    handler.setFormatter(logging.Formatter("%(levelname)s %(message)s"))
    handler.addFilter(RedactingFilter())
    logger = logging.getLogger("rotation.tests.redact")
    logger.addHandler(handler)
    logger.setLevel(logging.DEBUG)
    logger.propagate = False
    yield logger, stream
    logger.removeHandler(handler)


def test_filter_scrubs_messages_and_arguments(captured: tuple[logging.Logger, io.StringIO]) -> None:
    logger, stream = captured
    secret = Sensitive(SECRET_VALUE + "-log")
    logger.info("body was client_secret=%s", secret.reveal())
    logger.warning(f"inline {secret.reveal()}")
    output = stream.getvalue()
    assert secret.reveal() not in output
    assert output.count(REDACTED) == 2
    assert output.startswith("INFO body was client_secret=")


def test_filter_scrubs_tracebacks(captured: tuple[logging.Logger, io.StringIO]) -> None:
    logger, stream = captured
    secret = Sensitive(SECRET_VALUE + "-trace")
    try:
        raise RuntimeError(f"request failed: {secret.reveal()}")
    except RuntimeError:
        logger.exception("token request failed")
    output = stream.getvalue()
    assert secret.reveal() not in output
    assert "RuntimeError: request failed: <redacted>" in output


def test_filter_keeps_records_and_leaves_clean_ones_alone(
    captured: tuple[logging.Logger, io.StringIO],
) -> None:
    logger, stream = captured
    Sensitive(SECRET_VALUE + "-alive")  # something registered
    logger.info("rotated %s", "kv/db")
    assert stream.getvalue() == "INFO rotated kv/db\n"


def test_filter_with_extra_values_and_an_empty_registry() -> None:
    record = logging.LogRecord("x", logging.INFO, __file__, 1, "token %s", ("extra-secret-123",), None)
    assert RedactingFilter(SecretRegistry(), extra=["extra-secret-123"]).filter(record)
    assert record.getMessage() == f"token {REDACTED}"
    untouched = logging.LogRecord("x", logging.INFO, __file__, 1, "n=%d", (5,), None)
    assert RedactingFilter(SecretRegistry()).filter(untouched)
    assert untouched.args == (5,)


def test_filter_tolerates_a_malformed_record() -> None:
    record = logging.LogRecord("x", logging.INFO, __file__, 1, "%d", ("not a number",), None)
    assert RedactingFilter(SecretRegistry(), extra=["whatever-long"]).filter(record)


def test_install_attaches_once_to_each_handler() -> None:
    logger = logging.getLogger("rotation.tests.install")
    first, second = logging.NullHandler(), logging.NullHandler()
    logger.addHandler(first)
    logger.addHandler(second)
    try:
        installed = install(logger)
        assert install(logger) is installed
        assert first.filters == [installed] and second.filters == [installed]
    finally:
        logger.removeHandler(first)
        logger.removeHandler(second)
    assert isinstance(install(logging.getLogger("rotation.tests.no-handlers")), RedactingFilter)
