"""Kernels, bandwidth rules and MMD estimators."""

from promptkd.kernels.attention import AttentionKernel
from promptkd.kernels.composite import ProductKernel, ScaledKernel, SumKernel
from promptkd.kernels.deviation import MMDInterval, mmd_confidence_interval, mmd_deviation
from promptkd.kernels.feature_kernels import LabelKernel, LexicalKernel
from promptkd.kernels.functions import (
    KERNELS,
    cosine,
    imq,
    laplacian,
    linear,
    median_bandwidth,
    rbf,
    resolve_bandwidth,
    sq_distances,
)
from promptkd.kernels.lookup import get_kernel, kernel_diag, kernel_matrix, self_gram
from promptkd.kernels.mmd import (
    PermutationTestResult,
    mmd2,
    mmd2_from_kernels,
    mmd2_linear,
    mmd_permutation_test,
)
from promptkd.kernels.objects import IMQ, RBF, CallableKernel, Cosine, Kernel, Laplacian, Linear, as_kernel
from promptkd.kernels.views import Views

__all__ = [
    "IMQ",
    "KERNELS",
    "RBF",
    "AttentionKernel",
    "CallableKernel",
    "Cosine",
    "Kernel",
    "LabelKernel",
    "Laplacian",
    "LexicalKernel",
    "Linear",
    "MMDInterval",
    "PermutationTestResult",
    "ProductKernel",
    "ScaledKernel",
    "SumKernel",
    "Views",
    "as_kernel",
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
