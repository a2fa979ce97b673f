"""Elementwise binary, comparison, logical and unary math ops (numpy broadcasting = MIL broadcasting)."""

from __future__ import annotations

import math

import numpy as np

from . import mil_op

_BINARY = {
    "add": np.add,
    "sub": np.subtract,
    "mul": np.multiply,
    "real_div": np.true_divide,
    "floor_div": np.floor_divide,
    "mod": np.mod,  # python/numpy semantics: result has the divisor's sign (operator.mod in the op def)
    "pow": np.power,
    "maximum": np.maximum,
    "minimum": np.minimum,
    "equal": np.equal,
    "not_equal": np.not_equal,
    "less": np.less,
    "less_equal": np.less_equal,
    "greater": np.greater,
    "greater_equal": np.greater_equal,
    "logical_and": np.logical_and,
    "logical_or": np.logical_or,
    "logical_xor": np.logical_xor,
}


def _binary(fn):
    def op(x, y):
        return fn(np.asarray(x), np.asarray(y))

    return op


for _name, _fn in _BINARY.items():
    mil_op(_name)(_binary(_fn))

_UNARY = {
    "abs": np.abs,
    "acos": np.arccos,
    "asin": np.arcsin,
    "atan": np.arctan,
    "atanh": np.arctanh,
    "ceil": np.ceil,
    "cos": np.cos,
    "cosh": np.cosh,
    "exp": np.exp,
    "exp2": np.exp2,
    "floor": np.floor,
    "logical_not": np.logical_not,
    "round": np.round,  # the op def rounds halves to even (0.5 -> 0), as np.round does
    "sign": np.sign,
    "sin": np.sin,
    "sinh": np.sinh,
    "sqrt": np.sqrt,
    "square": np.square,
    "tan": np.tan,
    "tanh": np.tanh,
    "identity": lambda x: x,
}


def _unary(fn):
    def op(x):
        return fn(np.asarray(x))

    return op


for _name, _fn in _UNARY.items():
    mil_op(_name)(_unary(_fn))

_ERF = np.vectorize(math.erf, otypes=[np.float64])


def erf_array(x: np.ndarray) -> np.ndarray:
    """erf without scipy: Abramowitz-Stegun 7.1.26 is only 1e-7 accurate, so use math.erf on the
    unique values when there are few, and a 1e-16-accurate series/continued fraction otherwise."""
    x = np.asarray(x, dtype=np.float64)
    if x.size <= 4096:
        return _ERF(x)
    return _erf_vectorized(x)


def _erf_vectorized(x: np.ndarray) -> np.ndarray:
    # W. J. Cody's rational approximations (as in most libm erf implementations), 3 ranges.
    ax = np.abs(x)
    out = np.empty_like(ax)
    small = ax < 0.5
    mid = (ax >= 0.5) & (ax < 4.0)
    big = ax >= 4.0
    a = (3.16112374387056560e00, 1.13864154151050156e02, 3.77485237685302021e02, 3.20937758913846947e03, 1.85777706184603153e-1)
    b = (2.36012909523441209e01, 2.44024637934444173e02, 1.28261652607737228e03, 2.84423683343917062e03)
    s = ax[small]
    z = s * s
    num = a[4] * z
    den = z
    for i in range(3):
        num = (num + a[i]) * z
        den = (den + b[i]) * z
    out[small] = s * (num + a[3]) / (den + b[3])
    c = (5.64188496988670089e-1, 8.88314979438837594e00, 6.61191906371416295e01, 2.98635138197400131e02,
         8.81952221241769090e02, 1.71204761263407058e03, 2.05107837782607147e03, 1.23033935479799725e03,
         2.15311535474403846e-8)
    d = (1.57449261107098347e01, 1.17693950891312499e02, 5.37181101862009858e02, 1.62138957456669019e03,
         3.29079923573345963e03, 4.36261909014324716e03, 3.43936767414372164e03, 1.23033935480374942e03)
    m = ax[mid]
    num = c[8] * m
    den = m
    for i in range(7):
        num = (num + c[i]) * m
        den = (den + d[i]) * m
    erfc = (num + c[7]) / (den + d[7]) * np.exp(-m * m)
    out[mid] = 1.0 - erfc
    out[big] = 1.0
    return np.copysign(out, x)


@mil_op("erf")
def erf(x):
    x = np.asarray(x)
    return erf_array(x).astype(x.dtype)


@mil_op("log")
def log(x, epsilon=None):
    x = np.asarray(x)
    return np.log(x + _eps(epsilon, 1e-45, x))


@mil_op("rsqrt")
def rsqrt(x, epsilon=None):
    x = np.asarray(x)
    return 1 / np.sqrt(x + _eps(epsilon, 1e-12, x))


@mil_op("inverse")
def inverse(x, epsilon=None):
    x = np.asarray(x)
    return 1 / (x + _eps(epsilon, 1e-4, x))


def _eps(epsilon, default, x):
    # Defaults are in x's dtype (the op def does nptype(x.dtype)(default)): 1e-45 is 0 in fp16.
    return np.asarray(default if epsilon is None else epsilon).astype(x.dtype)


@mil_op("threshold")
def threshold(x, alpha):
    return np.maximum(np.asarray(x), alpha)


@mil_op("clip")
def clip(x, alpha, beta):
    return np.minimum(np.maximum(np.asarray(x), alpha), beta)


@mil_op("cast")
def cast(x, dtype):
    # The interpreter converts every result to its declared output dtype; cast only declares it.
    return np.asarray(x)


@mil_op("select")
def select(cond, a, b):
    return np.where(np.asarray(cond).astype(bool), a, b)
