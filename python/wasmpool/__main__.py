"""``python -m wasmpool``: the ``wasmpool`` command (``wasmpool._cli``),
for when the console script's folder is not on ``PATH``."""

from ._cli import main

if __name__ == "__main__":
    main()
