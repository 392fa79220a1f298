"""Errors that carry a message meant for a person, shown as is in the window and on the CLI."""

from __future__ import annotations


class ExplorerError(Exception):
    """A failure the user can act on; ``str(err)`` is the whole message."""


class InputError(ExplorerError):
    """The text, file or parameter the user gave cannot be used."""


class ModelError(ExplorerError):
    """A model could not be found, loaded or used for the asked purpose."""


class Cancelled(ExplorerError):
    """The user cancelled the job; nothing was changed."""

    def __init__(self, message: str = "Cancelled.") -> None:
        super().__init__(message)
