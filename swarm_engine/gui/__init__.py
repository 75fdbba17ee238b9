"""``swarm gui``: a local web dashboard for scenarios, live evals and runs,
reports, the learning store and llama servers.

The package sits beside :mod:`swarm_engine.cli` at the top of the layers: it
imports the library and the library never imports it. Only :mod:`.app`,
:mod:`.server` and :mod:`.sse` need the ``gui`` extra (Starlette, uvicorn);
the modules that gather data (:mod:`.catalog`, :mod:`.reports`, :mod:`.jobs`,
:mod:`.live`, :mod:`.panels`) are plain Python over the library, so they can
be tested and reused without a web server.
"""

from __future__ import annotations

__all__: list[str] = []
