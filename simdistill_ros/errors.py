"""The one base of the errors that are the user's input, not a bug: a command line prints them as one line,
no traceback, exit status 2. The bottom of the package: imports nothing of it. Each package's own errors
(``CalibrationError``, ``BagError``, ``StoreError``, ``CheckpointError``, ``FrameInputError``) subclass it."""


class UserError(Exception):
    """A problem with the user's input (paths, options, data): printed as one clear line, exit status 2."""
