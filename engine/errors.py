"""Errors raised at the engine's boundaries, worded for the user."""


class MprtError(Exception):
    """Base class of the engine's user-facing errors."""


class InputError(MprtError, ValueError):
    """A file or parameter given by the user is missing, malformed or of the wrong shape."""


class CheckpointError(MprtError):
    """A checkpoint file is missing, corrupt, or lacks keys whose values matter."""
