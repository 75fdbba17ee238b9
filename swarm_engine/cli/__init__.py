"""Command-line interface: ``swarm`` and ``swarm-bench``."""

__all__: list[str] = []
