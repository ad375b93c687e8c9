"""The prodtwin code location: thin; every concern lives in ``orchestration/defs``."""

from orchestration.defs import build_definitions
from orchestration.defs.settings import load_settings

defs = build_definitions(load_settings())
