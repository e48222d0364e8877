"""Typed exceptions. Every error a user can cause is a :class:`ClipicaError`.

The command line turns any ``ClipicaError`` into one line on stderr and exit
status 2; anything else is a bug (exit status 1, with a traceback).
Subclasses also derive from the matching built-in (``ValueError``,
``LookupError``, ...) so ``except ValueError`` keeps working for API users.
"""

from __future__ import annotations


class ClipicaError(Exception):
    """Base class of every error a user can cause (bad input, bad usage)."""


class InputError(ClipicaError, ValueError):
    """Invalid argument or input array (wrong shape, non-finite values, K > D, ...)."""


class DataSourceError(InputError):
    """A dataset spec that cannot be read: unknown scheme, missing file, bad layout."""


class BadImageError(InputError):
    """One row's image cannot be used: missing, truncated, not an image, too large."""


class ModelNotFoundError(ClipicaError, LookupError):
    """Unknown model spec, or weights that are not available offline."""


class StoreError(ClipicaError):
    """An embedding store that is missing, incomplete or incompatible."""


class StoreMismatchError(StoreError):
    """Resuming into a store that was written with a different model, data or options."""


class StoreLockedError(StoreError):
    """Another process is writing the store (the message names it: pid, host, command)."""


class ArtifactExistsError(ClipicaError, FileExistsError):
    """Refusing to overwrite an existing artifact without ``overwrite=True``."""


class ArtifactError(ClipicaError, ValueError):
    """A saved result or artifact that cannot be read: missing, corrupt, hand-edited,
    or written with another format tag or version."""


class StaleArtifactError(ArtifactError):
    """An artifact computed from other inputs than the ones given (its fingerprints differ)."""


class ClusterError(ClipicaError, ConnectionError):
    """A compute cluster (Ray) that cannot be reached, or that lacks the resources asked for."""


class DependencyError(ClipicaError, ImportError):
    """An optional dependency is needed; the message names the extra to install."""


class UnsafePathError(InputError):
    """A path in an artifact that points outside its run folder (absolute, ``..``, or a symlink)."""


def describe_exception(exc: BaseException) -> str:
    """``'struct.error: bad char in struct format'``: the qualified type (module-less for builtins), then the message.

    Used wherever an unexpected exception becomes one row's or one line's reason,
    so the reader sees what raised it without a traceback.
    """
    cls = type(exc)
    name = cls.__qualname__ if cls.__module__ == "builtins" else f"{cls.__module__}.{cls.__qualname__}"
    if name.startswith("_struct."):  # struct.error lives in the C module _struct
        name = name[1:]
    return f"{name}: {exc}" if str(exc) else name
