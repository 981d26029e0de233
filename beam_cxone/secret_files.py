"""Files that hold secrets (the CXone credentials file, a Kafka client's private key) are only read
when nobody but their owner can read them: a file others can read has leaked already, so it is
refused with a one-line error instead of being used.
"""

from __future__ import annotations

import os
import stat

__all__ = ["SecretFileError", "check_secret_file"]

# Any permission for the group or for others (mode wider than 0600) refuses the file.
_OTHERS = stat.S_IRWXG | stat.S_IRWXO


class SecretFileError(ValueError):
    """A secrets file that others can read, or that cannot be read at all. One line, no contents."""


def check_secret_file(path: str, what: str) -> None:
    """Raises SecretFileError unless `path` is a regular file readable by its owner only.

    `what` names the file in the message (e.g. "credentials file (--cxone_credentials_file)"). The mode
    of the file itself counts (a symlink is followed), so `chmod 600` on the target is the fix.
    """
    try:
        info = os.stat(path)
    except OSError as err:
        raise SecretFileError(
            f"cannot read {what} {path}: {err.strerror or type(err).__name__}"
        ) from None
    if not stat.S_ISREG(info.st_mode):
        raise SecretFileError(f"{what} {path} is not a regular file")
    mode = stat.S_IMODE(info.st_mode)
    if mode & _OTHERS:
        raise SecretFileError(
            f"{what} {path} is open to group or others (mode {mode:04o}, must be 0600 or narrower): "
            f"refusing to use it; run chmod 600 {path}"
        )
