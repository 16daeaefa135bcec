"""The ``wasmpool`` command, installed with the package (its console
script): the same command as the ``wasmpool`` executable built from the
checkout (docs/cli.md), run inside the extension module, so that
``pip install wasmpool`` needs no second executable.

Two things differ from the executable, both so that the command behaves
the same when installed this way:
- ``run --processes`` starts its workers as the package's pools do: this
  interpreter, serving as the worker (``_pool._worker_command``);
- ``build``, and ``run`` and ``list`` of a ``.py`` module, build with this
  interpreter (``WASMPOOL_PYTHON``, unless it is set already), the one
  whose environment has the ``python-tasks`` extra (componentize-py),
  even when its folder is not on ``PATH``.
"""

import os
import signal
import sys
from typing import List, NoReturn, Optional, Union

from . import _native
from ._pool import _worker_command


def main(argv: Optional[List[str]] = None) -> NoReturn:
    """Runs the command line ``argv`` (default: ``sys.argv``, the program's
    name first) and exits with its status, as the executable does."""
    argv = list(sys.argv if argv is None else argv)
    argv[0] = "wasmpool"
    if sys.executable:
        os.environ.setdefault("WASMPOOL_PYTHON", sys.executable)
    # Ctrl-C stops the command as it stops the executable. Python's own
    # handler would only set a flag that nothing reads while Rust runs.
    if hasattr(signal, "SIGINT"):
        signal.signal(signal.SIGINT, signal.SIG_DFL)
    worker: Union[List[str], str]
    try:
        worker = _worker_command()
    except RuntimeError as e:
        # No interpreter path: `--processes` fails, saying so.
        worker = str(e)
    sys.stdout.flush()
    status = _native.cli_main(argv, worker)
    sys.exit(status)
