"""Kernels, bandwidth rules and MMD estimators."""

from promptkd.kernels.attention import AttentionKernel
from promptkd.kernels.deviation import MMDInterval, mmd_confidence_interval, mmd_deviation
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
    self_gram,
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
    "AttentionKernel",
    "MMDInterval",
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
    "mmd_confidence_interval",
    "mmd_deviation",
    "mmd_permutation_test",
    "rbf",
    "resolve_bandwidth",
    "self_gram",
    "sq_distances",
]
