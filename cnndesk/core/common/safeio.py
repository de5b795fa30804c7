"""Safe file writing, moving and checking: the one place every writer in cnndesk goes through.

* :func:`safe_write` writes through an unpredictable temporary file created exclusively
  (``O_CREAT | O_EXCL``, which never follows a planted symlink) in the destination folder, fsyncs
  it, then renames it into place; on any error (a full disk included) the temporary file is
  removed and the old file is untouched. New files follow the umask (not 0600).
* :func:`move_file` / :func:`copy_file` never leave a partial file under the final name: across
  filesystems a move is copy-to-temp, fsync, rename, then remove the source.
* :func:`check_output` refuses an output path that cannot work (missing folder, a folder, an
  existing file without ``--force``, a read-only folder) *before* any work is done.
* :func:`require_regular_file` refuses FIFOs, devices and folders before anything opens them
  (opening a FIFO blocks for ever; ``/dev/zero`` never ends).
* :func:`display` and :func:`path_text` make names safe to print or to write as UTF-8.

Qt-free and torch-free.
"""

from __future__ import annotations

import errno
import os
import shutil
import stat
import tempfile
import time
import unicodedata
from contextlib import contextmanager
from pathlib import Path

from cnndesk.core.common.errors import CnndeskError


class OutputError(CnndeskError):
    """An output path that cannot be written; the message says why in plain words."""


def current_umask() -> int:
    """The process umask, read without changing it where the platform allows."""
    try:
        with open("/proc/self/status", encoding="ascii") as fh:
            for line in fh:
                if line.startswith("Umask:"):
                    return int(line.split()[1], 8)
    except (OSError, ValueError):
        pass
    mask = os.umask(0o022)  # (not thread-safe, but only where /proc is missing)
    os.umask(mask)
    return mask


def temp_in(folder: Path, name: str, prefix: str | None = None) -> tuple[int, str]:
    """An exclusive, unpredictable temporary file in ``folder`` (mode 0666 & ~umask)."""
    fd, tmp = tempfile.mkstemp(prefix=prefix or f".{name[:40]}.", suffix=".cnndesk-tmp", dir=folder)
    try:
        os.fchmod(fd, 0o666 & ~current_umask())
    except OSError:  # e.g. a filesystem without permissions (FAT): keep what we got
        pass
    return fd, tmp


def _unlink_quietly(p: str | os.PathLike) -> None:
    try:
        os.unlink(p)
    except OSError:
        pass


def _fsync_dir(folder: Path) -> None:
    try:
        fd = os.open(folder, os.O_RDONLY | getattr(os, "O_DIRECTORY", 0))
    except OSError:
        return
    try:
        os.fsync(fd)
    except OSError:
        pass
    finally:
        os.close(fd)


def _commit(tmp: str, path: Path, overwrite: bool) -> None:
    if overwrite:
        os.replace(tmp, path)
    else:
        try:
            os.link(tmp, path)  # fails if path appeared meanwhile: never clobbers
        except FileExistsError:
            raise FileExistsError(errno.EEXIST, f"{path} already exists", str(path)) from None
        except OSError as exc:  # no hard links here (FAT, some network shares)
            if exc.errno not in (errno.EPERM, errno.ENOTSUP, errno.EOPNOTSUPP, errno.EXDEV, errno.EMLINK):
                raise
            if os.path.lexists(path):
                raise FileExistsError(errno.EEXIST, f"{path} already exists", str(path)) from None
            os.replace(tmp, path)
            return
        os.unlink(tmp)


@contextmanager
def safe_write(path: str | os.PathLike, mode: str = "wb", *, overwrite: bool = True,
               make_parents: bool = False, encoding: str | None = None, newline: str | None = None):
    """Write ``path`` atomically. With ``overwrite=False`` an existing file is never replaced
    (FileExistsError). A failure (a full disk, a cancel, an exception in the ``with`` body) leaves
    no temporary file behind and the old file (if any) untouched."""
    path = Path(path)
    if make_parents:
        path.parent.mkdir(parents=True, exist_ok=True)
    if not overwrite and os.path.lexists(path):
        raise FileExistsError(errno.EEXIST, f"{path} already exists", str(path))
    if os.path.isdir(path):
        raise IsADirectoryError(errno.EISDIR, f"{path} is a folder", str(path))
    fd, tmp = temp_in(path.parent, path.name)
    try:
        if "b" in mode:
            fh = os.fdopen(fd, mode)
        else:
            fh = os.fdopen(fd, mode, encoding=encoding or "utf-8", newline=newline)
        with fh:
            yield fh
            fh.flush()
            os.fsync(fh.fileno())
        _commit(tmp, path, overwrite)
        _fsync_dir(path.parent)
    except BaseException:
        _unlink_quietly(tmp)
        raise


class PendingFile:
    """A file being written for a library that wants a file object for longer than one ``with``
    (e.g. several video encoders at once): an exclusive, unpredictable temp file beside ``path``
    (``.fh``, binary). :meth:`commit` fsyncs it and renames it into place — never over an existing
    file unless ``overwrite`` (FileExistsError, the temp file kept for another try) — and
    :meth:`discard` removes it. Nothing is ever written through a planted symlink."""

    def __init__(self, path: str | os.PathLike, *, overwrite: bool = False):
        self.path, self.overwrite = Path(path), overwrite
        fd, self.tmp = temp_in(self.path.parent, self.path.name)
        self.fh = os.fdopen(fd, "w+b")

    def commit(self, path: str | os.PathLike | None = None) -> Path:
        target = Path(path) if path is not None else self.path
        if not self.fh.closed:
            self.fh.flush()
            os.fsync(self.fh.fileno())
            self.fh.close()
        else:  # closed by the library that wrote it
            fd = os.open(self.tmp, os.O_RDONLY | getattr(os, "O_NOFOLLOW", 0))
            try:
                os.fsync(fd)
            finally:
                os.close(fd)
        _commit(self.tmp, target, self.overwrite)
        _fsync_dir(target.parent)
        self.path = target
        return target

    def discard(self) -> None:
        try:
            self.fh.close()
        except OSError:
            pass
        _unlink_quietly(self.tmp)


# The mover's temporary files: ``.cnndesk-move.<pid>.<random>.cnndesk-tmp``. One left by a killed
# process (a 593 MB half copy) is removed by the next move into that folder once its process is gone
# and it has not been written to for STALE_AFTER seconds (a copy in progress writes all the time; the
# age also covers a live mover whose pid means nothing here: another host or container on a share).
MOVE_TEMP_PREFIX = ".cnndesk-move."
STALE_AFTER = 60.0
_cleaned: set[str] = set()


def forget_cleaned_folders() -> None:
    """Forget which folders had their stale temp files removed (as a new process would)."""
    _cleaned.clear()


def clean_stale_move_temps(folder: str | os.PathLike) -> list[str]:
    """Remove the mover's temporary files in ``folder`` whose process no longer runs (a kill in
    the middle of a copy). Returns the names removed. Once per folder per process."""
    key = os.path.abspath(os.fspath(folder))
    if key in _cleaned:
        return []
    _cleaned.add(key)
    removed = []
    try:
        entries = list(os.scandir(folder))
    except OSError:
        return removed
    for e in entries:
        if not (e.name.startswith(MOVE_TEMP_PREFIX) and e.name.endswith(".cnndesk-tmp")):
            continue
        pid = e.name[len(MOVE_TEMP_PREFIX):].split(".", 1)[0]
        if not pid.isdigit() or int(pid) == os.getpid() or _alive(int(pid)):
            continue
        try:
            if e.is_file(follow_symlinks=False) and time.time() - e.stat(follow_symlinks=False).st_mtime > STALE_AFTER:
                os.unlink(e.path)
                removed.append(e.name)
        except OSError:
            pass
    return removed


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except (PermissionError, OSError, OverflowError):
        return True
    return True


def make_folder(folder: str | os.PathLike) -> Path:
    """Create ``folder`` (and its parents) for files to be moved or copied into, refusing one that
    is a symbolic link (a planted ``dog -> /etc`` would send the files elsewhere) or not a folder.
    Raises OSError (ELOOP/ENOTDIR) with the path."""
    folder = Path(folder)
    try:
        folder.mkdir(parents=True, exist_ok=True)
    except FileExistsError:  # a file where the folder should be (mkdir's words: "it already exists")
        raise NotADirectoryError(errno.ENOTDIR, "not a folder", str(folder)) from None
    st = os.lstat(folder)
    if stat.S_ISLNK(st.st_mode):
        raise OSError(errno.ELOOP, f"{path_text(folder.name)} is a symbolic link; refusing to write through it",
                      str(folder))
    if not stat.S_ISDIR(st.st_mode):
        raise OSError(errno.ENOTDIR, "not a folder", str(folder))
    return folder


def _copy_into_temp(src: Path, folder: Path) -> str:
    """Copy ``src`` (data + times + mode) into a new exclusive temp file in ``folder``, fsynced.
    Removes the temp file on any error (ENOSPC included)."""
    fd, tmp = temp_in(folder, src.name, prefix=f"{MOVE_TEMP_PREFIX}{os.getpid()}.")
    try:
        with open(src, "rb") as fin, os.fdopen(fd, "wb") as fout:
            shutil.copyfileobj(fin, fout, 1 << 20)
            fout.flush()
            os.fsync(fout.fileno())
        try:
            shutil.copystat(src, tmp)
        except OSError:
            pass
        return tmp
    except BaseException:
        _unlink_quietly(tmp)
        raise


def copy_file(src: str | os.PathLike, dst: str | os.PathLike) -> None:
    """Copy ``src`` to ``dst`` through a temp file; never overwrites (FileExistsError)."""
    src, dst = Path(src), Path(dst)
    clean_stale_move_temps(dst.parent)
    tmp = _copy_into_temp(src, dst.parent)
    try:
        _commit(tmp, dst, overwrite=False)
    except BaseException:
        _unlink_quietly(tmp)
        raise


def unique_path(target: Path) -> tuple[Path, bool]:
    """``target`` if free, else ``name (1).ext``, ``name (2).ext``…; True when renamed."""
    if not os.path.lexists(target):  # a dangling symlink is taken too: never written through
        return target, False
    stem, suffix = target.stem, target.suffix
    i = 1
    while True:
        candidate = target.with_name(f"{stem} ({i}){suffix}")
        if not os.path.lexists(candidate):
            return candidate, True
        i += 1


def move_into(src: str | os.PathLike, folder: str | os.PathLike, *, copy: bool = False,
              name: str | None = None) -> tuple[Path, bool]:
    """Move (or copy) ``src`` into ``folder`` (created; refused when it is a symbolic link) under
    ``name`` (default its own), or ``name (1).ext``… when taken: never overwrites, never writes
    through a link. Returns (the new path, whether it was renamed)."""
    src = Path(src)
    folder = make_folder(folder)
    target, renamed = unique_path(folder / (name or src.name))
    for _attempt in range(100):  # a file that appears meanwhile is never clobbered
        try:
            (copy_file if copy else move_file)(src, target)
            return target, renamed
        except FileExistsError:
            target, _ = unique_path(target)
            renamed = True
    raise FileExistsError(errno.EEXIST, "no free name", str(target))


def move_file(src: str | os.PathLike, dst: str | os.PathLike) -> None:
    """Move ``src`` to ``dst``; never overwrites (FileExistsError). Same filesystem: one rename
    (via a hard link, so a file that appeared meanwhile is not clobbered). Across filesystems:
    copy to a temp name, fsync, rename, then remove the source — a full disk or a kill never
    leaves a partial file under the final name, and the source stays until the copy is safe."""
    src, dst = Path(src), Path(dst)
    clean_stale_move_temps(dst.parent)
    if os.path.lexists(dst):
        raise FileExistsError(errno.EEXIST, f"{dst} already exists", str(dst))
    try:
        os.link(src, dst)
    except FileExistsError:
        raise
    except OSError:
        pass  # another filesystem, or no hard links: copy below
    else:
        os.unlink(src)
        return
    copy_file(src, dst)
    os.unlink(src)


def check_output(path: str | os.PathLike, *, force: bool = False) -> Path:
    """Refuse an output path that cannot work, before any work: its folder is missing or not a
    folder, the path is a folder, it exists and ``force`` is not set, or the folder is not
    writable. Returns the path. Raises OutputError with a one-line reason."""
    p = Path(os.fspath(path))
    if not p.name or os.fspath(path).endswith(os.sep):
        raise OutputError(f"{path_text(path)} is a folder; give a file name")
    folder = p.parent if str(p.parent) else Path(".")
    try:
        folder_ok = folder.is_dir()
    except OSError:
        folder_ok = False
    if not folder_ok:
        if os.path.lexists(folder):
            raise OutputError(f"{path_text(folder)} is not a folder")
        raise OutputError(f"the folder {path_text(folder)} does not exist (create it first)")
    try:
        st = os.lstat(p)
    except FileNotFoundError:
        st = None
    except OSError as exc:
        raise OutputError(f"{path_text(p)}: {exc.strerror or exc}") from None
    if st is not None:
        if stat.S_ISDIR(st.st_mode):
            raise OutputError(f"{path_text(p)} is a folder; give a file name inside it")
        if not force:
            raise OutputError(f"{path_text(p)} already exists (use --force to replace it)")
        if not stat.S_ISREG(st.st_mode) and not stat.S_ISLNK(st.st_mode):
            raise OutputError(f"{path_text(p)} is not a regular file; refusing to replace it")
    if not os.access(folder, os.W_OK | os.X_OK):
        raise OutputError(f"cannot write into {path_text(folder)} (permission denied or read-only)")
    try:  # a read-only mount passes os.access for root: try for real (and clean up)
        fd, tmp = tempfile.mkstemp(prefix=".cnndesk-check.", dir=folder)
        os.close(fd)
        os.unlink(tmp)
    except OSError as exc:
        raise OutputError(f"cannot write into {path_text(folder)} ({describe_oserror(exc)})") from None
    return p


def require_regular_file(path: str | os.PathLike, what: str = "file") -> os.stat_result:
    """stat ``path`` and refuse anything that is not a regular file (FIFO, device, socket,
    folder) before it is opened. Raises CnndeskError; FileNotFoundError passes through."""
    st = os.stat(path)
    if not stat.S_ISREG(st.st_mode):
        raise CnndeskError(f"{path_text(os.path.basename(os.fspath(path)) or path)}: {kind_of(st)}, not a {what}")
    return st


def kind_of(st: os.stat_result) -> str:
    m = st.st_mode
    if stat.S_ISDIR(m):
        return "a folder"
    if stat.S_ISFIFO(m):
        return "a named pipe (FIFO)"
    if stat.S_ISCHR(m) or stat.S_ISBLK(m):
        return "a device"
    if stat.S_ISSOCK(m):
        return "a socket"
    return "not a regular file"


def describe_oserror(exc: OSError) -> str:
    """Plain words for the OS errors a user can fix."""
    plain = {
        errno.ENOSPC: "the disk is full",
        errno.EDQUOT: "the disk quota is exceeded",
        errno.EROFS: "the disk is read-only",
        errno.EACCES: "permission denied",
        errno.EPERM: "not permitted",
        errno.ENOENT: "no such file or folder",
        errno.EISDIR: "it is a folder",
        errno.ENOTDIR: "a part of the path is not a folder",
        errno.EEXIST: "it already exists",
        errno.ENAMETOOLONG: "the name is too long",
        errno.EIO: "an input/output error (failing disk or network share?)",
    }
    words = plain.get(exc.errno or -1) or exc.strerror or str(exc) or type(exc).__name__
    name = exc.filename
    if exc.errno == errno.ENOTDIR and name and os.path.lexists(name) and not os.path.isdir(name):
        words = "a file is there, not a folder"  # the named path itself, not a part of it
    return f"{path_text(name)}: {words}" if name else words


def path_text(path: str | os.PathLike | bytes | None) -> str:
    """A path as valid UTF-8 text: undecodable bytes of non-UTF-8 file names become ``\\xNN``
    escapes (so distinct names stay distinct), never a UnicodeEncodeError."""
    if path is None:
        return ""
    if isinstance(path, bytes):
        return path.decode("utf-8", "backslashreplace")
    text = os.fspath(path)
    if isinstance(text, bytes):
        return text.decode("utf-8", "backslashreplace")
    try:
        text.encode("utf-8")
        return text
    except UnicodeEncodeError:
        return text.encode("utf-8", "surrogateescape").decode("utf-8", "backslashreplace")


def display(text: object, limit: int = 200) -> str:
    """Text safe to show on a terminal or in a dialog: control characters (ESC, CR, newline, C1,
    bidi overrides) are shown escaped, never acted on; long text is shortened."""
    s = path_text(str(text)) if not isinstance(text, str) else path_text(text)
    out = []
    for ch in s:
        cat = unicodedata.category(ch)
        if cat == "Cc" or ch in "\u202a\u202b\u202c\u202d\u202e\u2066\u2067\u2068\u2069\u200e\u200f":
            out.append(ch.encode("unicode_escape").decode("ascii"))
        else:
            out.append(ch)
    s = "".join(out)
    return s if len(s) <= limit else s[: limit - 1] + "…"
