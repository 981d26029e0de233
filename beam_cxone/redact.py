"""A safety net under the rule that no secret is ever logged: every log record of the process, from any
logger, at any level and for any handler, has the known secret values replaced by `***` when it is
created (a log record factory), in its message, its exception text and its stack.

Known secrets: the values of SECRET_ENV in the environment when `install` runs, and every value
passed to `register` (the CXone credentials read from a file). Values shorter than MIN_CHARS are not
masked (they would mask ordinary words), so a real secret is never that short.

The code itself never logs a secret; this catches what a third-party client might log at DEBUG (the
Kafka admin client logs its whole configuration, a PLAIN SASL exchange its bytes). REDACT_OFF_ENV=0
leaves the net out (the secured integration tests do, to see that nothing needs masking).
"""

from __future__ import annotations

import logging
import os
import threading
import traceback
from collections.abc import Mapping

__all__ = ["MASK", "MIN_CHARS", "REDACT_OFF_ENV", "SECRET_ENV", "install", "redact", "register",
           "uninstall"]

MASK = "***"
REDACT_OFF_ENV = "BEAM_CXONE_REDACT_LOGS"
MIN_CHARS = 6
SECRET_ENV = (
    "KAFKA_SASL_PLAIN_PASSWORD",
    "KAFKA_SSL_PASSWORD",
    "CASSANDRA_PASSWORD",
    "CXONE_CLIENT_SECRET",
    "CXONE_ACCESS_KEY_SECRET",
)

_LOCK = threading.Lock()
_SECRETS: tuple[str, ...] = ()  # longest first, so a secret containing another is masked whole
_ORIGINAL_FACTORY: object | None = None  # the record factory `install` wrapped


def register(*values: str | None) -> None:
    """Masks these values in every later log record."""
    global _SECRETS
    new = {v for v in values if isinstance(v, str) and len(v) >= MIN_CHARS}
    if not new - set(_SECRETS):
        return
    with _LOCK:
        _SECRETS = tuple(sorted(set(_SECRETS) | new, key=len, reverse=True))


def redact(text: str) -> str:
    for secret in _SECRETS:
        if secret in text:
            text = text.replace(secret, MASK)
    return text


def install(environ: Mapping[str, str] | None = None) -> None:
    """Registers the secrets of the environment and wraps the log record factory (once), unless
    REDACT_OFF_ENV=0."""
    global _ORIGINAL_FACTORY
    env = os.environ if environ is None else environ
    if env.get(REDACT_OFF_ENV) == "0":
        return
    register(*(env.get(name) for name in SECRET_ENV))
    with _LOCK:
        if _ORIGINAL_FACTORY is not None:
            return
        make_record = _ORIGINAL_FACTORY = logging.getLogRecordFactory()

    def redacting_record(*args, **kwargs) -> logging.LogRecord:
        record = make_record(*args, **kwargs)
        if _SECRETS:
            _clean(record)
        return record

    logging.setLogRecordFactory(redacting_record)


def uninstall() -> None:
    """Back to the factory before `install`, no secret known (for tests)."""
    global _ORIGINAL_FACTORY, _SECRETS
    with _LOCK:
        if _ORIGINAL_FACTORY is not None:
            logging.setLogRecordFactory(_ORIGINAL_FACTORY)
        _ORIGINAL_FACTORY = None
        _SECRETS = ()


def _clean(record: logging.LogRecord) -> None:
    try:
        message = record.getMessage()
    except Exception:  # noqa: BLE001 - a broken format string stays as logging would show it
        return
    clean = redact(message)
    if clean != message:
        record.msg, record.args = clean, None
    if record.exc_info and record.exc_info[1] is not None:
        text = "".join(traceback.format_exception(*record.exc_info)).rstrip("\n")
        clean = redact(text)
        if clean != text:
            record.exc_text = clean  # what formatters print instead of formatting exc_info again
    if record.stack_info:
        record.stack_info = redact(record.stack_info)
