# Fixed-width types shared by every native module (one place, as scikit-learn's
# utils/_typedefs.pxd): cimport these instead of spelling C types per module.
from libc.stdint cimport int8_t, uint8_t, int16_t, uint16_t, int32_t, uint32_t, int64_t, uint64_t

ctypedef double float64_t
ctypedef float float32_t
ctypedef Py_ssize_t intp_t
