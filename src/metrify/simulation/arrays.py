"""The numpy array types the simulator computes in (one name each, for the signatures)."""

from __future__ import annotations

import numpy as np
import numpy.typing as npt

__all__ = ["BoolArray", "F64Array", "I64Array", "U64Array"]

F64Array = npt.NDArray[np.float64]
I64Array = npt.NDArray[np.int64]
U64Array = npt.NDArray[np.uint64]
BoolArray = npt.NDArray[np.bool_]
