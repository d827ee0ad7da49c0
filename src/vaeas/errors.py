"""The one exception type users see.

Every failure caused by input (a bad key in params.yaml, a file with the wrong hash, an
unreachable host) is raised as a :class:`VaeasError` whose message is a single line that names
the offending key, file or value. The CLI prints it as ``vaeas: error: <message>`` and exits 2,
without a traceback.
"""


class VaeasError(Exception):
    """A user-facing error with a one-line message."""

    def __init__(self, message: str):
        # Keep the promise of one line even if a caller interpolates a multi-line value.
        super().__init__(" ".join(str(message).split("\n")))


def describe_os_error(exc: OSError) -> str:
    """One line for a failure of the machine rather than of the input (a full disk, a folder
    that cannot be written): the path, the reason, and what to do about it."""
    import errno

    where = exc.filename if exc.filename is not None else "(no path given)"
    if exc.filename2 is not None:
        where = f"{where} -> {exc.filename2}"
    reason = exc.strerror or str(exc) or type(exc).__name__
    if exc.errno in (errno.ENOSPC, errno.EDQUOT):
        advice = ("free some space and rerun the same command "
                  "(finished outputs are kept; training resumes from its last checkpoint)")
    elif exc.errno in (errno.EACCES, errno.EPERM, errno.EROFS):
        advice = "check that this user may read and write there (owner, mode, read-only mount)"
    else:
        return VaeasError(f"{where}: {reason}").args[0]
    return VaeasError(f"{where}: {reason}; {advice}").args[0]
