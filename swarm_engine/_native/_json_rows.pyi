from collections.abc import Iterator
from typing import Any

BLOCK_ROWS: int

def encode_rows(n: int, template: list[Any], sep: bytes) -> bytes: ...

class RowWriter:
    def __init__(self, n: int, template: list[Any], sep: bytes) -> None: ...
    def blocks(self, rows: int = ...) -> Iterator[bytearray]: ...
