"""driftwatch's named errors. The CLI turns each into one line and its exit code.

A scan that fails is *not* an exception: it is a ScanResult with status failed (see models).
These errors are for operational trouble that stops a command.
"""

from __future__ import annotations


class DriftwatchError(Exception):
    """Root of every error driftwatch raises on purpose."""

    exit_code = 4


class ConfigError(DriftwatchError):
    """Bad configuration or bad input from the user."""

    exit_code = 2


class EngineUnavailable(DriftwatchError):
    """No Docker engine answered."""

    exit_code = 4


class EngineError(DriftwatchError):
    """The engine answered, but an operation failed in a way that stops the command."""

    exit_code = 4


class ImageMissing(DriftwatchError):
    """The image reference is not present in the local engine (driftwatch never pulls)."""

    exit_code = 3


class StoreError(DriftwatchError):
    """The SQLite store could not be opened, read or written."""

    exit_code = 4


class NotFound(DriftwatchError):
    """A thing the user named (an image reference, a scan) is not in the store."""

    exit_code = 2


class WebhookError(DriftwatchError):
    """A webhook could not be delivered after its retries."""

    exit_code = 4


class LockHeld(DriftwatchError):
    """Another driftwatch run holds the database's run lock."""

    exit_code = 4
