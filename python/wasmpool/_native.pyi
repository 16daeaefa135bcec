# Type stubs of the extension module (python/src/), for type checkers.
from types import TracebackType
from typing import Any, Callable, Dict, Iterable, Iterator, List, Optional, Tuple, Type, Union, final

__all__ = [
    "NativePool", "MapIterator", "worker_main", "dumps", "cli_main", "SETTINGS", "DEFAULT_SETTINGS", "TASK_WORLD_WIT",
]

@final
class MapIterator(Iterator[Any]):
    """The results of a map, one per input (see python/src/stream.rs)."""
    def __iter__(self) -> "MapIterator": ...
    def __next__(self) -> Any: ...
    def __len__(self) -> int: ...
    def _collect(
        self, progress: Optional[Callable[[int, Optional[int]], Any]] = None, raise_first: bool = True
    ) -> List[Any]: ...
    def close(self) -> None: ...
    def __enter__(self) -> "MapIterator": ...
    def __exit__(
        self, _kind: Optional[Type[BaseException]], _value: Optional[BaseException], _traceback: Optional[TracebackType]
    ) -> None: ...

@final
class NativePool:
    def __new__(
        cls,
        module: Union[str, bytes],
        settings: str,
        worker_command: Optional[List[str]] = None,
    ) -> "NativePool": ...
    def tasks(self) -> List[Dict[str, Any]]: ...
    def workers(self) -> int: ...
    def seed(self) -> int: ...
    def worker_kind(self) -> str: ...
    def worker_pids(self) -> List[Optional[int]]: ...
    def stats(self) -> List[Dict[str, Any]]: ...
    def stream(
        self,
        task: str,
        items: Iterable[Any],
        *,
        arity: Tuple[int, Optional[int]],
        total: Optional[int] = None,
        ordered: bool = True,
        chunk_size: Optional[int] = None,
        deadline: Optional[float] = None,
        fuel: Optional[int] = None,
        seed: Optional[int] = None,
        with_index: bool = False,
        messages: Optional[Callable[[int, Any], Any]] = None,
        task_progress: Optional[Callable[[int, int, int], Any]] = None,
    ) -> MapIterator: ...
    def close(self) -> None: ...
    @property
    def closed(self) -> bool: ...


def worker_main() -> None: ...

def dumps(value: Any) -> str: ...

def cli_main(argv: List[str], worker: Union[List[str], str]) -> int: ...

# Every setting of `wasmpool.Pool` (the library's `Settings` fields), and
# their defaults as a JSON object.
SETTINGS: List[str]
DEFAULT_SETTINGS: str
# The text of the `wasmpool:task` world (wit/wasmpool-task.wit).
TASK_WORLD_WIT: str
