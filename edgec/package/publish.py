"""The output folder changes as a whole: a build writes everything into a private staging folder inside it, and
one short commit swaps the previous set of files (artifacts, manifest, reports) for the new one.

- The commit runs under an exclusive lock on the output folder (flock on its directory), so two builds into the
  same --out take turns there; the folder holds one build's complete set, never a mix.
- SIGINT and SIGTERM are held during the commit (a few renames): an interrupt lands before it (the previous set
  stays) or after it (the new set is complete). A failed rename (read-only file system, disk full) undoes the
  renames already done.
- The commit moves the old set aside first and the new manifest in last, so even a power cut mid-commit never
  leaves a manifest describing other files than the ones beside it. The old set is what the old manifest lists;
  files edgec did not write are left alone.
- A symlinked --out is followed: the build goes into the folder it points to (its real path).
- A build that fails before the commit removes its staging folder, and the output folder too if it created it.
"""

from __future__ import annotations

import contextlib
import errno
import fcntl
import json
import os
import shutil
import signal
import tempfile
from pathlib import Path

from edgec.errors import OutputError

STAGE_PREFIX = ".edgec-stage-"
REPORTS = ("manifest.json", "report.md", "report.html")  # written by every build; manifest.json always last


def _fail(out: Path, action: str, e: OSError) -> OutputError:
    hint = {errno.ENOSPC: "The disk is full: free some space", errno.EDQUOT: "The disk quota is used up",
            errno.EROFS: "The file system is read-only: pick another --out folder"}.get(
        e.errno, "Pick a writable --out folder")
    return OutputError(f"Cannot {action} in the output folder {out}: {e.strerror or e}. {hint}; the folder keeps "
                       f"the files of the previous build.")


def _pid_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


@contextlib.contextmanager
def _signals_held():
    """SIGINT/SIGTERM arriving inside are delivered when it ends. Python runs signal handlers in the main thread
    whichever thread the OS picked (native runtimes keep thread pools), so the handlers are swapped, not the
    signal mask. Outside the main thread handlers cannot be set, and nothing is held."""
    held: list[int] = []
    try:
        previous = {s: signal.signal(s, lambda signum, frame: held.append(signum))
                    for s in (signal.SIGINT, signal.SIGTERM)}
    except ValueError:
        yield
        return
    try:
        yield
    finally:
        for s, handler in previous.items():
            signal.signal(s, handler)
        if held:
            signal.raise_signal(held[0])


class OutputFolder:
    """`with OutputFolder(path) as out:` build into `out.stage`, then `out.commit(names)`."""

    def __init__(self, requested: Path):
        self.requested = Path(requested)
        self.final = Path(os.path.realpath(self.requested))
        self.created: list[Path] = []  # folders this build made, removed again if it fails
        self.stage: Path | None = None
        self.committed = False

    def __enter__(self) -> "OutputFolder":
        final = self.final
        if final.exists() and not final.is_dir():
            raise OutputError(f"--out {self.requested}: {final} is a file, not a folder. Pick a folder for --out.")
        missing = []
        p = final
        while not p.exists():
            missing.append(p)
            p = p.parent
        try:
            for d in reversed(missing):
                d.mkdir()
                self.created.append(d)
        except OSError as e:
            self._remove_created()
            raise OutputError(f"Cannot create the output folder {self.requested}: {e.strerror}. Pick a writable "
                              f"--out folder.") from None
        try:
            readonly = bool(os.statvfs(final).f_flag & os.ST_RDONLY)
        except OSError:
            readonly = False
        if readonly or not os.access(final, os.W_OK):
            self._remove_created()
            raise OutputError(f"The output folder {self.requested} is not writable"
                              f"{' (read-only file system)' if readonly else ''}. Pick a writable --out folder.")
        self._clean_stale()
        try:
            self.stage = Path(tempfile.mkdtemp(prefix=f"{STAGE_PREFIX}{os.getpid()}-", dir=final))
        except OSError as e:
            self._remove_created()
            raise _fail(self.requested, "write", e) from None
        return self

    def __exit__(self, exc_type, exc, tb):
        if self.stage is not None:
            shutil.rmtree(self.stage, ignore_errors=True)
        if not self.committed:
            self._remove_created()
        return False

    def _remove_created(self) -> None:
        for d in reversed(self.created):  # innermost first; only if still empty
            with contextlib.suppress(OSError):
                d.rmdir()

    def _clean_stale(self) -> None:
        """Staging folders of builds that were killed (SIGKILL, power cut) and can never commit."""
        for entry in self.final.glob(f"{STAGE_PREFIX}*"):
            pid = entry.name[len(STAGE_PREFIX):].split("-", 1)[0]
            if pid.isdigit() and not _pid_alive(int(pid)):
                shutil.rmtree(entry, ignore_errors=True)

    def commit(self, names: list[str]) -> None:
        """Replace the previous build's files by `names` (top-level entries of the stage; manifest.json goes in
        last). Under the folder's lock, with SIGINT/SIGTERM held until the folder is consistent again."""
        assert self.stage is not None
        fd = os.open(self.final, os.O_RDONLY)
        try:
            with _signals_held():
                fcntl.flock(fd, fcntl.LOCK_EX)  # another build's commit: wait for it (renames only, short)
                self._swap(names)
                self.committed = True
        finally:
            os.close(fd)  # releases the lock

    def _swap(self, names: list[str]) -> None:
        final, stage = self.final, self.stage
        new = [n for n in names if n != "manifest.json"] + (["manifest.json"] if "manifest.json" in names else [])
        old = ["manifest.json"] + [n for n in previous_files(final) if n != "manifest.json"]
        aside = stage / ".previous"
        moved_aside: list[str] = []
        moved_in: list[str] = []
        try:
            aside.mkdir()
            for n in dict.fromkeys(old + new):  # the old manifest first: from here on no manifest lies
                if (final / n).exists() or (final / n).is_symlink():
                    os.replace(final / n, aside / n)
                    moved_aside.append(n)
            for n in new:
                os.replace(stage / n, final / n)
                moved_in.append(n)
        except OSError as e:
            for n in reversed(moved_in):  # undo: the previous set goes back
                with contextlib.suppress(OSError):
                    os.replace(final / n, stage / n)
            for n in reversed(moved_aside):
                with contextlib.suppress(OSError):
                    os.replace(aside / n, final / n)
            raise _fail(self.requested, "move the new files into place", e) from None


def previous_files(folder: Path) -> list[str]:
    """Top-level names a previous build wrote into `folder`, from its manifest (nothing when there is none or it
    cannot be read: then no file is taken for edgec's)."""
    try:
        data = json.loads((folder / "manifest.json").read_text(encoding="utf-8"))
        names = set(REPORTS)
        for a in data.get("artifacts", []):
            names.add(Path(a["path"]).parts[0])
            names.update(Path(x).parts[0] for x in a.get("extra_files", []))
    except (OSError, ValueError, KeyError, TypeError, AttributeError, IndexError):
        return []
    # never a path outside the folder, whatever a hand-edited manifest says
    return sorted(n for n in names if n not in ("", ".", "..") and "/" not in n and not n.startswith(STAGE_PREFIX))
