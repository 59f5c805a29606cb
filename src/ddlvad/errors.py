"""One line per user-facing error: what every entry point prints instead of a traceback.

``ddlvad <verb>`` and every ``python -m ddlvad.<module>`` map OS errors (read-only folder,
a file where a folder was expected, ...), bad config/YAML (``ConfigError``), refused
checkpoints and bad input to one line naming the path, and exit with code 2.
"""

from __future__ import annotations

import errno
import os
import sys
import warnings
from collections.abc import Callable

# What a user can cause and fix (anything else is a bug and keeps its traceback).
USER_ERRORS: tuple[type[BaseException], ...] = (ValueError, OSError, ImportError, RuntimeError)

_HINTS = {
    errno.EACCES: "no permission; choose a folder you can write to",
    errno.EPERM: "no permission; choose a folder you can write to",
    errno.EROFS: "read-only file system; choose a writable folder",
    errno.ENOSPC: "disk full",
    errno.EEXIST: "exists and is not a folder",
    errno.ENOTDIR: "a path component is a file, expected a folder",
    errno.EISDIR: "is a folder, expected a file",
}


def error_line(e: BaseException) -> str:
    """A one-line description of ``e`` that names the path for OS errors."""
    if isinstance(e, OSError) and e.filename is not None:
        what = _HINTS.get(e.errno or 0, e.strerror or type(e).__name__)
        reason = e.strerror or type(e).__name__
        other = f" -> {e.filename2}" if e.filename2 else ""
        text = f"{e.filename}{other}: {reason}" + (f" ({what})" if what != reason else "")
    else:
        text = str(e) or type(e).__name__
    return " ".join(text.split())  # one line, whatever the message held


def _one_line_warning(message, category, filename, lineno, line=None) -> str:
    return f"ddlvad: warning: {message}\n"


def install_warning_format() -> None:
    """Warnings print as ``ddlvad: warning: ...`` (one line, no source excerpt)."""
    warnings.formatwarning = _one_line_warning


def run_entry(prog: str, fn: Callable[[], int]) -> int:
    """Run an entry point's body; print user errors as one line on stderr and return 2
    (Ctrl-C: one line, 130; training turns Ctrl-C and SIGTERM into a user error saying from
    which step ``--resume`` goes on, ``train.stops.TrainingStopped``, so it exits 2).

    Warnings print as one line while it runs (the previous format is restored after).
    ``DDLVAD_DEBUG=1`` re-raises instead, with the traceback."""
    previous = warnings.formatwarning
    install_warning_format()
    try:
        return fn()
    except KeyboardInterrupt as e:
        if os.environ.get("DDLVAD_DEBUG"):
            raise
        how = getattr(e, "signal_name", "Ctrl-C")  # SIGTERM: train.stops.Terminated
        print(f"{prog}: interrupted ({how}); no file was left half-written", file=sys.stderr)
        return 130
    except USER_ERRORS as e:
        if os.environ.get("DDLVAD_DEBUG"):  # the full traceback, for bug reports
            raise
        print(f"{prog}: error: {error_line(e)}", file=sys.stderr)
        return 2
    finally:
        warnings.formatwarning = previous
