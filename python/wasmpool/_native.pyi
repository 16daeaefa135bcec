# Type stubs of the extension module (python/src/), for type checkers.
from typing import Any, Callable, Dict, Iterable, Iterator, List, Optional, Tuple, Union

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
    def __exit__(self, *exc: Any) -> None: ...

class NativePool:
    def __init__(
        self,
        module: Union[str, bytes],
        *,
        workers: Optional[int] = None,
        seed: Optional[int] = None,
        worker_command: Optional[List[str]] = None,
        max_retries: Optional[int] = None,
        deadline: Optional[float] = None,
        fuel: Optional[int] = None,
        max_memory: Optional[int] = None,
        max_stack: Optional[int] = None,
        max_output: Optional[int] = None,
        chunk_size: Optional[int] = None,
        interruptible: Optional[bool] = None,
        cache_dir: Optional[str] = None,
        cache: bool = True,
        load_deadline: Optional[float] = None,
        allow_wall_clock: bool = False,
        allow_monotonic_clock: bool = False,
        fresh_state: bool = True,
        init: Optional[Tuple[str, str]] = None,
        canonicalize_nans: bool = True,
    ) -> None: ...
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
