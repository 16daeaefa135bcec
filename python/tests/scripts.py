"""Running a Python program in a child process, as a student would run a
script, and watching what it prints."""

import os
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path
from typing import List, Optional, Tuple

import wasmpool

# The folder holding the `wasmpool` these tests imported: the checkout's
# python/ (run by .ci/python) or site-packages (an installed wheel).
PACKAGE_PARENT = Path(wasmpool.__file__).resolve().parents[1]


def env() -> dict:
    """The child's environment: the same `wasmpool` as the tests' first on
    its path, whether that is the checkout or an installed copy."""
    e = dict(os.environ)
    e["PYTHONPATH"] = os.pathsep.join(p for p in [str(PACKAGE_PARENT), os.environ.get("PYTHONPATH", "")] if p)
    return e


def _default_sigint() -> None:
    signal.signal(signal.SIGINT, signal.SIG_DFL)


class Script:
    """A program started in its own session (so its whole process group,
    workers included, can be signalled and killed)."""

    def __init__(self, path: Path, *args: str) -> None:
        self.proc = subprocess.Popen(
            [sys.executable, str(path), *args],
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
            env=env(),
            start_new_session=True,
            # As in a terminal: Ctrl-C interrupts. (A shell that started the
            # tests in the background may have set SIGINT ignored, which a
            # child inherits, and Python then never raises KeyboardInterrupt.)
            preexec_fn=_default_sigint,
        )
        self.stdout: List[str] = []
        self.stderr: List[str] = []
        self._readers = [
            threading.Thread(target=self._read, args=(self.proc.stdout, self.stdout), daemon=True),
            threading.Thread(target=self._read, args=(self.proc.stderr, self.stderr), daemon=True),
        ]
        for reader in self._readers:
            reader.start()

    @staticmethod
    def _read(stream, lines: List[str]) -> None:
        for line in stream:
            lines.append(line)

    def wait_for(self, text: str, timeout: float) -> bool:
        """Whether `text` appears in its output (stdout or stderr) within
        `timeout` seconds."""
        end = time.monotonic() + timeout
        while time.monotonic() < end:
            if any(text in line for line in self.stdout + self.stderr):
                return True
            if self.proc.poll() is not None:
                for reader in self._readers:
                    reader.join(timeout=5)
                return any(text in line for line in self.stdout + self.stderr)
            time.sleep(0.02)
        return False

    def signal_group(self, sig: int) -> None:
        """Sends `sig` to its process group, as Ctrl-C in a terminal does."""
        os.killpg(self.proc.pid, sig)

    def finish(self, timeout: float) -> Tuple[Optional[int], str, str]:
        """Waits for it to end; kills its whole group past `timeout`
        (returning None as its status)."""
        try:
            code: Optional[int] = self.proc.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            code = None
        self.kill()
        for reader in self._readers:
            reader.join(timeout=5)
        return code, "".join(self.stdout), "".join(self.stderr)

    def kill(self) -> None:
        try:
            os.killpg(self.proc.pid, signal.SIGKILL)
        except (ProcessLookupError, PermissionError):
            pass
        self.proc.wait()


def alive(pid: int) -> bool:
    """Whether process `pid` still exists (and is not a zombie)."""
    try:
        with open(f"/proc/{pid}/stat") as stat:
            return stat.read().split(") ")[-1][0] != "Z"
    except FileNotFoundError:
        return False
