"""Errors raised at the engine's boundaries, worded for the user."""


class MprtError(Exception):
    """Base class of the engine's user-facing errors."""


class InputError(MprtError, ValueError):
    """A file or parameter given by the user is missing, malformed or of the wrong shape."""


class CheckpointError(MprtError):
    """A checkpoint file is missing, corrupt, or lacks keys whose values matter."""


def describe_os_error(err: OSError) -> str:
    """One line for an OSError: the file(s) it is about and the system's reason."""
    reason = err.strerror or str(err) or type(err).__name__
    files = [f for f in (err.filename, err.filename2) if f is not None]
    return f"{' -> '.join(map(str, files))}: {reason}" if files else reason
