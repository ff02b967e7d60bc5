"""Kernels, bandwidth rules and MMD estimators."""

from promptkd.kernels.functions import (
    KERNELS,
    cosine,
    get_kernel,
    imq,
    kernel_diag,
    kernel_matrix,
    laplacian,
    linear,
    median_bandwidth,
    rbf,
    resolve_bandwidth,
    sq_distances,
)
from promptkd.kernels.mmd import (
    PermutationTestResult,
    mmd2,
    mmd2_from_kernels,
    mmd2_linear,
    mmd_permutation_test,
)

__all__ = [
    "KERNELS",
    "PermutationTestResult",
    "cosine",
    "get_kernel",
    "imq",
    "kernel_diag",
    "kernel_matrix",
    "laplacian",
    "linear",
    "median_bandwidth",
    "mmd2",
    "mmd2_from_kernels",
    "mmd2_linear",
    "mmd_permutation_test",
    "rbf",
    "resolve_bandwidth",
    "sq_distances",
]
