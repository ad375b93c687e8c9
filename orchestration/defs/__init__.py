"""Dagster definitions by concern; each module returns a small ``Definitions``."""
