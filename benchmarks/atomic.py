"""Writing a benchmark's table or record so that a reader never sees it half-written."""
from pathlib import Path


def write_atomically(path: Path, text: str) -> None:
    """Write beside `path`, then rename over it."""
    tmp = path.with_name(path.name + ".tmp")
    tmp.write_text(text)
    tmp.replace(path)
