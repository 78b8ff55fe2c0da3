"""The errors bayesstrf raises for bad input.

Every check of an argument, file or setting raises `InputError` (or `InputTypeError` for a
wrong type), with a message that names the argument, what was expected and what was found.
They subclass ``ValueError`` and ``TypeError``, so ``except ValueError`` keeps working. The
command line reports these in one line and exits with status 2; any other exception is a bug
and keeps its traceback (exit status 1).
"""


class InputError(ValueError):
    """An argument, file or setting bayesstrf cannot use."""


class InputTypeError(InputError, TypeError):
    """An argument of the wrong type."""
