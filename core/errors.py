"""The one exception tree of fanout.

    FanoutError                 anything a user can cause, with a message fit to print
    ├── DatasetError            a dataset file that cannot be read as records
    ├── SchemaError             a response model that cannot be found or used
    ├── ConfigError             an option that makes no sense (concurrency 0, bad URL, ...)
    ├── EndpointError           the endpoint refused us before the run (bad key, unreachable)
    ├── StoreError              the run store cannot be opened or has no such run
    └── ExportError             a results file cannot be written

Everything else is a bug. Errors *during* a run never raise: a failed row is a
row with an error (see ``core.results``).
"""

from __future__ import annotations


class FanoutError(Exception):
    """Root of every error fanout reports to a user as a single message."""


class DatasetError(FanoutError):
    """A dataset could not be loaded; the message names the file, line and fix."""


class SchemaError(FanoutError):
    """A response model could not be imported or is not a pydantic model."""


class ConfigError(FanoutError):
    """An option value that cannot work."""


class EndpointError(FanoutError):
    """The endpoint cannot be used (unreachable, bad key, unknown model)."""


class StoreError(FanoutError):
    """The run store cannot be opened, or holds no such run."""


class ExportError(FanoutError):
    """A results file cannot be written (bad folder, no space, unknown format)."""
