"""numba compilation settings shared by the CPU kernels (``_bpr_kernel``, ``_cpu_adam``)."""

from __future__ import annotations

from numba import njit
from numba.core.compiler import Compiler


class _NoAliasCompiler(Compiler):
    """numba's default pipeline, compiling with its ``noalias`` flag: array arguments are
    promised not to overlap one another. Without it, LLVM guards every vectorised loop
    with run-time overlap checks of all the arrays the loop touches; the BPR-MF kernel
    runs ~6 short loops (over the 64 factors) per training row, where those checks
    measured 10-25% of its time. ``pipeline_class`` is numba's documented hook for a
    custom compiler; ``Flags.noalias`` is the flag numba's own parallel backend sets for
    the same purpose."""

    def __init__(self, typingctx, targetctx, library, args, return_type, flags, locals):
        flags.noalias = True  # a fresh Flags object per compilation
        super().__init__(typingctx, targetctx, library, args, return_type, flags, locals)


def noalias_njit(**options):
    """``numba.njit(cache=True, nogil=True, error_model="numpy", **options)`` compiled under
    the no-overlap promise: only for functions whose callers never pass two views of
    the same memory."""
    return njit(cache=True, nogil=True, error_model="numpy", pipeline_class=_NoAliasCompiler, **options)
