"""The grants of `Pool`'s settings in the form the library reads them
(`wasmpool::Settings`, shared with the command's `--allow-env`,
`--allow-dir` and `--allow-write-dir`)."""

from __future__ import annotations

import os
from typing import Any, Iterable, List, Mapping, Optional, Tuple, Union

# A folder granted to WASI tasks: "DIR" (seen at the same path), "DIR::GUEST",
# a path object, or a pair (DIR, GUEST).
FolderGrant = Union[str, "os.PathLike[str]", Tuple[Union[str, "os.PathLike[str]"], str]]


def env_grants(given: Union[Iterable[str], Mapping[str, str], None]) -> List[str]:
    """``allow_env``: a mapping of names to values, or names (``"NAME"``,
    for the value it has in this process, or ``"NAME=VALUE"``); None for none."""
    if given is None:
        return []
    if isinstance(given, (str, bytes)):
        raise TypeError(f"allow_env takes a list of names or a dict of names to values, not the string {given!r}")
    if isinstance(given, Mapping):
        pairs = list(given.items())
        for name, value in pairs:
            if not isinstance(name, str) or not isinstance(value, str):
                # Not the value itself: it may be a secret.
                raise TypeError(f"allow_env: names and values are str, not {type(name).__name__} "
                                f"{name!r} with a {type(value).__name__} value")
            if "=" in name:
                raise ValueError(f"allow_env: a name holds no '=': {name!r}")
        return [f"{name}={value}" for name, value in pairs]
    names = list(given)
    for name in names:
        if not isinstance(name, str):
            raise TypeError(f"allow_env: each entry is a str (NAME or NAME=VALUE), not {name!r}")
    return names


def folder_grants(setting: str, given: Optional[Iterable[FolderGrant]]) -> List[Any]:
    """``allow_dir`` or ``allow_write_dir``: each folder as the library reads
    it, ``"DIR[::GUEST]"`` or ``[DIR, GUEST]``; None for none."""
    if given is None:
        return []
    if isinstance(given, (str, bytes, os.PathLike)):
        raise TypeError(f"{setting} takes a list of folders, not one: {setting}=[{given!r}]")
    folders: List[Any] = []
    for folder in given:
        if isinstance(folder, str):
            folders.append(folder)
        elif isinstance(folder, os.PathLike):
            path = os.fspath(folder)
            folders.append([path, path])
        elif isinstance(folder, tuple) and len(folder) == 2 and isinstance(folder[1], str):
            folders.append([os.fspath(folder[0]), folder[1]])
        else:
            raise TypeError(f"{setting}: each folder is a path or a pair (path, where tasks see it), not {folder!r}")
    return folders
