"""Reading what users give the engine: files, TOML, schemas, names.

Below every other layer (beside ``settings``, which uses it): scenario
loading (``swarm_engine.eval.loader``) and the configuration
(``swarm_engine.settings``) read, parse and validate through the same
functions, so both report a bad value the same way: ``FILE:LINE: FIELD:
got X, expected RANGE``.
"""

from swarm_engine.inputs.convert import convert, describe_range, field_name
from swarm_engine.inputs.files import read_text
from swarm_engine.inputs.locate import locate, parse_path
from swarm_engine.inputs.text import bad_name_char
from swarm_engine.inputs.tomlparse import parse_toml

__all__ = ["convert", "describe_range", "field_name", "read_text", "locate", "parse_path", "bad_name_char",
           "parse_toml"]
