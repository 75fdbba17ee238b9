# cython: language_level=3
"""JSON rows written straight from columns: a report's ``runs``, one row per run.

Building a dict per run and encoding the list took 8.5 s at 10^6 runs, against
0.5 s for the runs themselves. Here a row is a template of fields, each a
constant or a column, and the row is formatted in one pass in C:

==================  =====================================================
``bytes``           a constant, copied as is
``("int", a)``      int64 column: the number
``("uint", a)``     uint64 column: the number
``("tokens", b)``   one pre-encoded JSON token per row, the tokens joined by
                    ``,`` (numbers encoded by msgspec: floats keep their exact
                    shortest form)
``("pick", c, t)``  int64 codes: the bytes ``t[c[i]]`` (a few distinct values)
``("ints", m, k, drop)``  int64 matrix (n, K): ``{k0 v0,k1 v1}``; ``k`` are the
                    encoded keys with their colon, zeros left out with ``drop``
``("bools", m, k)`` uint8 matrix (n, K): ``{k0 true,...}``
``("floats", b, k)`` n*K tokens as for ``tokens``, K per row: ``{k0 t0,...}``
==================  =====================================================

Rows are separated by ``sep``. The Python face is
:mod:`swarm_engine.eval.runs_json`, which keeps the bytes equal to those of
the dict path (a test holds them to it).
"""
from cpython.bytearray cimport PyByteArray_AS_STRING, PyByteArray_FromStringAndSize, PyByteArray_Resize
from cpython.mem cimport PyMem_Free, PyMem_Malloc
from libc.stdint cimport int64_t, uint64_t, uint8_t
from libc.string cimport memcpy, memset

import numpy as np

cdef enum Kind:
    K_CONST = 0
    K_INT = 1
    K_UINT = 2
    K_TOKENS = 3
    K_PICK = 4
    K_INTS = 5
    K_BOOLS = 6
    K_FLOATS = 7

_KINDS = {"int": K_INT, "uint": K_UINT, "tokens": K_TOKENS, "pick": K_PICK, "ints": K_INTS,
          "bools": K_BOOLS, "floats": K_FLOATS}


cdef const char *DIGIT_PAIRS = (b"00010203040506070809101112131415161718192021222324252627282930313233343536373839"
                                 b"40414243444546474849505152535455565758596061626364656667686970717273747576777879"
                                 b"8081828384858687888990919293949596979899")


cdef inline int n_digits(uint64_t v) noexcept nogil:
    cdef int k = 1
    while v >= 100:
        v //= 100
        k += 2
    return k + (v >= 10)


cdef inline Py_ssize_t put_uint(char *out, uint64_t v) noexcept nogil:
    """``v`` in decimal, two digits at a time from the end."""
    cdef int k = n_digits(v), at = k
    cdef uint64_t q
    while v >= 100:
        q = v // 100
        at -= 2
        memcpy(out + at, DIGIT_PAIRS + 2 * (v - 100 * q), 2)
        v = q
    if v >= 10:
        memcpy(out, DIGIT_PAIRS + 2 * v, 2)
    else:
        out[0] = <char>(48 + v)
    return k


cdef inline Py_ssize_t put_int(char *out, int64_t v) noexcept nogil:
    if v < 0:
        out[0] = 45
        return 1 + put_uint(out + 1, <uint64_t>(-(v + 1)) + 1)
    return put_uint(out, <uint64_t>v)


cdef Py_ssize_t[::1] token_offsets(const unsigned char[::1] blob, Py_ssize_t count):
    """Where each of ``count`` comma-joined tokens starts, plus one past the end (+1)."""
    cdef Py_ssize_t[::1] at = np.empty(count + 1, np.intp)
    cdef Py_ssize_t i, k = 1, n = blob.shape[0]
    at[0] = 0
    if count == 0:
        if n:
            raise ValueError("tokens in an empty column")
        return at
    for i in range(n):
        if blob[i] == 44:
            if k >= count:
                raise ValueError(f"more than {count} tokens in a column")
            at[k] = i + 1
            k += 1
    if k != count:
        raise ValueError(f"{k} tokens in a column of {count}")
    at[count] = n + 1
    return at


cdef struct Field:
    int kind
    const char *data                 # K_CONST: the bytes; K_TOKENS / K_FLOATS: the blob
    Py_ssize_t size                  # K_CONST: its length
    const int64_t *i64               # K_INT column, K_PICK codes, K_INTS matrix
    const uint64_t *u64              # K_UINT column
    const uint8_t *u8                # K_BOOLS matrix
    const Py_ssize_t *at             # token starts (K_TOKENS, K_FLOATS)
    Py_ssize_t K                     # keys per row (the dict kinds)
    const char **keys                # K_PICK: the table; dict kinds: the keys
    Py_ssize_t *key_size
    bint drop


cdef const char *_ptr(object array):
    cdef const unsigned char[::1] view = array.reshape(-1).view(np.uint8) if array.size else _EMPTY
    return <const char *>&view[0]


_EMPTY = np.zeros(1, np.uint8)


BLOCK_ROWS = 8192      # rows per block: a few MB, a buffer the allocator reuses warm


def encode_rows(Py_ssize_t n, list template, bytes sep):
    """The ``n`` rows of ``template`` (see the module docstring), joined by ``sep``, as bytes."""
    return b"".join(RowWriter(n, template, sep).blocks())


cdef class RowWriter:
    """The rows of one template, written block by block (:meth:`blocks`): a
    10^6-run report is never held whole in memory once more."""

    cdef Field *fields
    cdef Py_ssize_t nf, n, bound
    cdef list held                       # every object a pointer points into
    cdef bytes sep

    def __cinit__(self, Py_ssize_t n, list template, bytes sep):
        self.nf = len(template)
        self.n = n
        self.sep = sep
        self.held = []
        self.fields = <Field *>PyMem_Malloc(max(self.nf, 1) * sizeof(Field))
        if self.fields == NULL:
            raise MemoryError()
        memset(self.fields, 0, max(self.nf, 1) * sizeof(Field))
        self.bound = len(sep) + _setup(n, template, self.fields, self.held)

    def __dealloc__(self):
        cdef Py_ssize_t f
        if self.fields != NULL:
            for f in range(self.nf):
                PyMem_Free(self.fields[f].keys)
                PyMem_Free(self.fields[f].key_size)
            PyMem_Free(self.fields)

    def blocks(self, Py_ssize_t rows=BLOCK_ROWS):
        """The rows, ``rows`` at a time, as bytearrays (the separator before every row but the first)."""
        cdef Py_ssize_t i = 0, stop, used, n_sep = len(self.sep)
        cdef const char *sep = self.sep
        cdef bytearray buf
        cdef char *out
        while i < self.n:
            stop = min(self.n, i + rows)
            buf = PyByteArray_FromStringAndSize(NULL, (stop - i) * self.bound + 1)
            out = PyByteArray_AS_STRING(buf)
            with nogil:
                used = _rows(out, i, stop, self.fields, self.nf, sep, n_sep)
            PyByteArray_Resize(buf, used)
            yield buf
            i = stop


cdef Py_ssize_t _setup(Py_ssize_t n, list template, Field *fields, list held) except -1:
    """Point ``fields`` at the template's columns (kept alive in ``held``); the most bytes a row takes."""
    cdef Py_ssize_t f, K, bound = 0
    cdef list strings
    for f, part in enumerate(template):
        if isinstance(part, bytes):
            held.append(part)
            fields[f].kind = K_CONST
            fields[f].data = <const char *>(<bytes>part)
            fields[f].size = len(<bytes>part)
            bound += len(<bytes>part)
            continue
        kind = _KINDS[part[0]]
        fields[f].kind = kind
        if kind == K_INT or kind == K_UINT or kind == K_PICK:
            a = np.ascontiguousarray(part[1], np.uint64 if kind == K_UINT else np.int64)
            if a.ndim != 1 or a.shape[0] != n:
                raise ValueError(f"a column of shape {a.shape}, not ({n},)")
            held.append(a)
            if kind == K_UINT:
                fields[f].u64 = <const uint64_t *>_ptr(a)
            else:
                fields[f].i64 = <const int64_t *>_ptr(a)
            bound += 21
            if kind == K_PICK:
                strings = [bytes(t) for t in part[2]]
                if n and (a.min() < 0 or a.max() >= len(strings)):
                    raise ValueError("a code outside its table")
                _set_keys(&fields[f], strings, held)
                bound += max((len(t) for t in strings), default=0)
        elif kind == K_TOKENS or kind == K_FLOATS:
            strings = [bytes(k) for k in part[2]] if kind == K_FLOATS else []
            K = len(strings) if kind == K_FLOATS else 1
            blob = np.frombuffer(part[1], np.uint8)
            at = np.asarray(token_offsets(blob, n * K))
            held += [part[1], at]
            fields[f].data = <const char *>_ptr(blob)
            fields[f].at = <const Py_ssize_t *><const void *>_ptr(at)
            _set_keys(&fields[f], strings, held)
            longest = int(np.diff(at).max()) if n * K else 0
            bound += K * longest + sum(len(k) + 1 for k in strings) + 2
        else:
            m = np.ascontiguousarray(part[1], np.int64 if kind == K_INTS else np.uint8)
            strings = [bytes(k) for k in part[2]]
            if m.ndim != 2 or m.shape[0] != n or m.shape[1] != len(strings):
                raise ValueError(f"a matrix of shape {m.shape}, not ({n}, {len(strings)})")
            held.append(m)
            if kind == K_INTS:
                fields[f].i64 = <const int64_t *>_ptr(m)
                fields[f].drop = bool(part[3])
            else:
                fields[f].u8 = <const uint8_t *>_ptr(m)
            _set_keys(&fields[f], strings, held)
            bound += sum(len(k) + 22 for k in strings) + 2
    return bound


cdef _set_keys(Field *fd, list strings, list held):
    cdef Py_ssize_t j, K = len(strings)
    fd.K = K
    fd.keys = <const char **>PyMem_Malloc(max(K, 1) * sizeof(char *))
    fd.key_size = <Py_ssize_t *>PyMem_Malloc(max(K, 1) * sizeof(Py_ssize_t))
    if fd.keys == NULL or fd.key_size == NULL:
        raise MemoryError()
    held += strings
    for j in range(K):
        fd.keys[j] = <const char *>(<bytes>strings[j])
        fd.key_size[j] = len(<bytes>strings[j])


cdef Py_ssize_t _rows(char *out, Py_ssize_t start, Py_ssize_t stop, Field *fields,
                      Py_ssize_t nf, const char *s_sep, Py_ssize_t n_sep) noexcept nogil:
    """Rows ``start`` to ``stop`` into ``out`` (room enough); the bytes written."""
    cdef Py_ssize_t i, j, f, a, K, used = 0
    cdef Field *fd
    cdef bint first
    cdef int64_t v
    for i in range(start, stop):
        if i:
            memcpy(out + used, s_sep, n_sep)
            used += n_sep
        for f in range(nf):
            fd = &fields[f]
            if fd.kind == K_CONST:
                memcpy(out + used, fd.data, fd.size)
                used += fd.size
            elif fd.kind == K_INT:
                used += put_int(out + used, fd.i64[i])
            elif fd.kind == K_UINT:
                used += put_uint(out + used, fd.u64[i])
            elif fd.kind == K_TOKENS:
                a = fd.at[i]
                memcpy(out + used, fd.data + a, fd.at[i + 1] - 1 - a)
                used += fd.at[i + 1] - 1 - a
            elif fd.kind == K_PICK:
                v = fd.i64[i]
                memcpy(out + used, fd.keys[v], fd.key_size[v])
                used += fd.key_size[v]
            else:
                out[used] = 123                  # {
                used += 1
                first = True
                K = fd.K
                for j in range(K):
                    if fd.kind == K_INTS and fd.drop and fd.i64[i * K + j] == 0:
                        continue
                    if not first:
                        out[used] = 44           # ,
                        used += 1
                    first = False
                    memcpy(out + used, fd.keys[j], fd.key_size[j])
                    used += fd.key_size[j]
                    if fd.kind == K_INTS:
                        used += put_int(out + used, fd.i64[i * K + j])
                    elif fd.kind == K_BOOLS:
                        if fd.u8[i * K + j]:
                            memcpy(out + used, b"true", 4)
                            used += 4
                        else:
                            memcpy(out + used, b"false", 5)
                            used += 5
                    else:
                        a = fd.at[i * K + j]
                        memcpy(out + used, fd.data + a, fd.at[i * K + j + 1] - 1 - a)
                        used += fd.at[i * K + j + 1] - 1 - a
                out[used] = 125                  # }
                used += 1
    return used
