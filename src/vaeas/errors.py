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
