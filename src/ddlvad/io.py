"""Atomic file writes: write to a temp file in the same folder, then rename.

The temp file (``.NAME.xxxxxx.tmp``) is ``fcntl``-locked while it is written, so
``clean_orphans`` can tell the leftovers of a killed writer from a write in progress.
"""

from __future__ import annotations

import contextlib
import errno
import fcntl
import json
import math
import os
import tempfile
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any


@contextlib.contextmanager
def naming(path: str | Path) -> Iterator[None]:
    """Re-raise a write error that does not name its file as one naming ``path``: a full
    disk gives a bare ``[Errno 28]``, and torch's writer a RuntimeError without a file
    (``[enforce fail at inline_container.cc...]``). Used by every atomic write and by the
    append-only CSV logs."""
    try:
        yield
    except (OSError, RuntimeError) as e:
        named = _named(e, Path(path))
        if named is e:
            raise
        raise named from e


def _named(e: BaseException, path: Path) -> BaseException:
    """``e`` naming ``path`` when it does not already (``e`` itself when it does)."""
    if isinstance(e, OSError) and e.filename is None and e.errno is not None:
        return OSError(e.errno, e.strerror or str(e), str(path))  # errno picks the subclass
    if type(e) is RuntimeError and str(path) not in str(e):
        if "inline_container.cc" not in str(e):
            return RuntimeError(f"{path}: could not write ({' '.join(str(e).split())})")
        if _disk_full(path.parent):  # torch's writer hides the ENOSPC it met
            return OSError(errno.ENOSPC, os.strerror(errno.ENOSPC), str(path))
        return RuntimeError(f"{path}: could not write (torch's writer failed)")
    return e


def _disk_full(folder: Path) -> bool:
    try:
        return os.statvfs(folder).f_bavail == 0
    except OSError:
        return False


@contextlib.contextmanager
def _staged(path: Path, write: Callable[[str], None]) -> Iterator[str]:
    """``write(tmp)`` into a locked temp file beside ``path``; yields the temp path, which is
    removed on exit unless the caller renamed it. Errors name ``path``."""
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX)  # "being written": clean_orphans leaves it alone
        with naming(path):
            write(tmp)
            os.chmod(tmp, 0o666 & ~_umask())  # mkstemp makes 0600; give the usual file mode
        yield tmp
    finally:
        if os.path.exists(tmp):
            os.unlink(tmp)
        os.close(fd)


def atomic_write(path: str | Path, write: Callable[[str], None]) -> Path:
    """Call ``write(tmp_path)`` then rename onto ``path``; the temp file is removed on error."""
    path = Path(path)
    with _staged(path, write) as tmp:
        os.replace(tmp, path)
    return path


def atomic_write_group(files: dict[Path, Callable[[str], None]]) -> list[Path]:
    """Write every file to its temp name first, then rename them in, in order: a failed
    write (a full disk) publishes none of them and leaves the old files as they were."""
    with contextlib.ExitStack() as stack:
        tmps = [stack.enter_context(_staged(Path(p), w)) for p, w in files.items()]
        for tmp, path in zip(tmps, files, strict=True):
            os.replace(tmp, path)
    return [Path(p) for p in files]


def _locked(path: Path) -> bool:
    fd = os.open(path, os.O_RDONLY)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        return False
    except OSError:
        return True
    finally:
        os.close(fd)


def clean_orphans(
    folder: str | Path, pattern: str = ".*.tmp", min_age_s: float = 5.0
) -> list[Path]:
    """Remove temp files that killed writers left in ``folder`` (``atomic_write``'s).

    A file is removed only when no process holds its lock and it is at least ``min_age_s``
    old (a write that has just created its file may not hold the lock yet)."""
    removed, now = [], time.time()
    for p in Path(folder).glob(pattern) if Path(folder).is_dir() else ():
        with contextlib.suppress(OSError):
            if now - p.stat().st_mtime >= min_age_s and not _locked(p):
                p.unlink()
                removed.append(p)
    return removed


def _umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask


def atomic_write_text(path: str | Path, text: str) -> Path:
    return atomic_write(path, lambda tmp: Path(tmp).write_text(text))


def atomic_write_json(path: str | Path, obj: Any) -> Path:
    return atomic_write_text(path, json.dumps(obj, indent=2, sort_keys=False) + "\n")


def json_safe(obj: Any) -> Any:
    """NaN / inf floats -> None, recursively (strict JSON has no NaN)."""
    if isinstance(obj, float):
        return obj if math.isfinite(obj) else None
    if isinstance(obj, dict):
        return {k: json_safe(v) for k, v in obj.items()}
    if isinstance(obj, list | tuple):
        return [json_safe(v) for v in obj]
    return obj


def read_text(path: str | Path) -> str:
    """A UTF-8 text file's contents; ValueError naming the file when its bytes are not UTF-8."""
    data = Path(path).read_bytes()
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError as e:
        raise ValueError(
            f"{path}: not UTF-8 text (byte 0x{data[e.start]:02x} at offset {e.start}); "
            f"expected a UTF-8 file"
        ) from None
