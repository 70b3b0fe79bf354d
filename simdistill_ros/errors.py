"""Errors that are the user's input, not a bug: the command line prints them as one line, no traceback."""


class UserError(Exception):
    """A problem with the user's input (paths, options, data): printed as one clear line, exit status 2."""


def user_error_types() -> tuple[type[BaseException], ...]:
    """The project's errors that name a problem with input data (imported lazily: torch is heavy)."""
    types: list[type[BaseException]] = [UserError]
    try:
        from simdistill_ros.geometry.camera import CalibrationError

        types.append(CalibrationError)
    except ImportError:
        pass
    try:
        from simdistill_ros.frames.bag_reader import BagError

        types.append(BagError)
    except ImportError:
        pass
    try:
        from simdistill_ros.replay.target_store import StoreError

        types.append(StoreError)
    except ImportError:
        pass
    try:
        from simdistill_ros.models.checkpoint import CheckpointError

        types.append(CheckpointError)
    except ImportError:
        pass
    return tuple(types)
