# Type stubs of the extension module (python/src/), for type checkers.
from typing import Any, Dict, Iterator, List, Optional, Tuple, Union

class Stream(Iterator[Tuple[Optional[int], Optional[str], Optional[BaseException]]]):
    def __iter__(self) -> "Stream": ...
    def __next__(self) -> Tuple[Optional[int], Optional[str], Optional[BaseException]]: ...
    def events(self) -> List[Tuple[str, int, Any, Any]]: ...
    def cancel(self) -> None: ...

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
        inputs: Iterator[str],
        *,
        ordered: bool = True,
        chunk_size: Optional[int] = None,
        deadline: Optional[float] = None,
        fuel: Optional[int] = None,
        seed: Optional[int] = None,
        listen: bool = False,
    ) -> Stream: ...
    def close(self) -> None: ...
    @property
    def closed(self) -> bool: ...

def worker_main() -> None: ...

def cli_main(argv: List[str], worker: Union[List[str], str]) -> int: ...
