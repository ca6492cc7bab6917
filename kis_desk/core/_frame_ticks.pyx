# cython: language_level=3, boundscheck=False, wraparound=False, cdivision=True, initializedcheck=False
"""Compiled kernel of :mod:`kis_desk.core.frame_ticks`: one plain trade frame → its Ticks.

Why: decoding a frame into 46 strings per record, validating them and building a ``Tick`` cost
the event loop ≈ 5 µs per trade in Python, more than the bare receive loop itself. This scans
the frame's bytes once, creates only the values a ``Tick`` holds and returns ``None`` for
anything it does not handle with certainty (encrypted, non-ASCII, malformed, unusual number
formats it cannot read the way Python reads them…): the caller then takes the pure-Python path
(``decode_message`` → ``ticks_from_records``), which stays the reference. Pure function, no I/O.
"""

from cpython.bytes cimport PyBytes_AS_STRING, PyBytes_Check, PyBytes_GET_SIZE
from cpython.float cimport PyFloat_FromDouble
from cpython.long cimport PyLong_FromLongLong
from cpython.ref cimport Py_INCREF, PyObject
from cpython.tuple cimport PyTuple_SET_ITEM
from cpython.unicode cimport PyUnicode_Check, PyUnicode_DecodeASCII
from libc.string cimport memcmp, memcpy


cdef extern from "Python.h":
    void PyObject_GC_UnTrack(void *op)
    double PyOS_string_to_double(const char *s, char **endptr, PyObject *overflow_exception) except? -1.0
    const char *PyUnicode_AsUTF8AndSize(object unicode, Py_ssize_t *size) except NULL
    bint PyUnicode_IS_ASCII(object o)
    ctypedef struct _Type "PyTypeObject":
        object (*tp_alloc)(_Type *, Py_ssize_t)


# Field positions (kis_desk.protocol.fields / states); the wrapper checks they still agree.
cdef enum:
    F_CODE = 0
    F_TIME = 1
    F_PRICE = 2
    F_CHANGE = 4
    F_RATE = 5
    F_VOLUME = 12
    F_CUM = 13
    F_STRENGTH = 18
    F_DATE = 33
    F_MKOP = 34
    F_HALT = 35
    F_HOUR = 43
    NEEDED = 46          # fields 0..45 are located; the rest of a record is skipped

FIELD_POSITIONS = (F_CODE, F_TIME, F_PRICE, F_CHANGE, F_RATE, F_VOLUME, F_CUM, F_STRENGTH,
                   F_DATE, F_MKOP, F_HALT, F_HOUR, NEEDED)

cdef object _Tick = None            # kis_desk.core.ticks.Tick
cdef object _cache = None           # records.KST_TIMESTAMP_CACHE
cdef object _kst_timestamp = None   # records.kst_timestamp
cdef object _state_of = None        # ticks._state_of (a record that is not in normal trading)
cdef object _source = None          # SOURCE_WS
cdef object _trade_trs = frozenset()
cdef char _last_key[14]
cdef object _last_ts = None


def configure(tick_type, cache, kst_timestamp, state_of, source, trade_trs):
    """Hand the kernel the Python objects it builds with (called once by the wrapper)."""
    global _Tick, _cache, _kst_timestamp, _state_of, _source, _trade_trs, _last_ts
    _Tick, _cache, _kst_timestamp, _state_of = tick_type, cache, kst_timestamp, state_of
    _source, _trade_trs, _last_ts = source, frozenset(trade_trs), None


cdef inline bint _digits(const char *p, Py_ssize_t n) noexcept:
    cdef Py_ssize_t i
    if n <= 0:
        return False
    for i in range(n):
        if p[i] < 48 or p[i] > 57:
            return False
    return True


cdef inline long long _value(const char *p, Py_ssize_t n) noexcept:
    cdef long long v = 0
    cdef Py_ssize_t i
    for i in range(n):
        v = v * 10 + (p[i] - 48)
    return v


cdef inline object _text(const char *p, Py_ssize_t n):
    return PyUnicode_DecodeASCII(p, n, NULL)


cdef object _int_of_digits(const char *p, Py_ssize_t n):
    """int() of a validated run of ASCII digits."""
    if n <= 18:
        return PyLong_FromLongLong(_value(p, n))
    return int(_text(p, n))


cdef object _int_or_none(const char *p, Py_ssize_t n):
    """int(text), None where int() raises ValueError (ticks_from_records' rule)."""
    cdef Py_ssize_t i = 0
    cdef long long v
    if n > 0 and (p[0] == 45 or p[0] == 43):      # '-' '+'
        i = 1
    if 1 <= n - i <= 18 and _digits(p + i, n - i):
        v = _value(p + i, n - i)
        return PyLong_FromLongLong(-v if p[0] == 45 else v)
    try:
        return int(_text(p, n))
    except ValueError:
        return None


cdef double[23] _POW10 = [1e0, 1e1, 1e2, 1e3, 1e4, 1e5, 1e6, 1e7, 1e8, 1e9, 1e10, 1e11, 1e12,
                          1e13, 1e14, 1e15, 1e16, 1e17, 1e18, 1e19, 1e20, 1e21, 1e22]


cdef object _float_or_none(const char *p, Py_ssize_t n):
    """float(text), None where float() raises ValueError.

    ``[+-]digits[.digits]`` with at most 15 digits is ``mantissa / 10**k`` of two exactly
    representable doubles, which IEEE division rounds correctly — the value float() gives
    (Clinger's fast path). Other plain decimals go through the C routine float() uses; any
    other form through float() itself."""
    cdef char buf[48]
    cdef Py_ssize_t i = 0
    cdef Py_ssize_t int_start, frac_start, digits
    cdef Py_ssize_t frac = 0
    cdef long long m
    cdef double v
    cdef bint neg = n > 0 and p[0] == 45
    if n > 0 and (neg or p[0] == 43):
        i = 1
    int_start = i
    while i < n and 48 <= p[i] <= 57:
        i += 1
    cdef bint ok = i > int_start
    digits = i - int_start
    m = _value(p + int_start, digits) if ok and digits <= 15 else 0
    if ok and i < n:
        if p[i] == 46:                                  # '.'
            i += 1
            frac_start = i
            while i < n and 48 <= p[i] <= 57:
                i += 1
            frac = i - frac_start
            ok = frac > 0 and i == n
            digits += frac
            if ok and digits <= 15:
                m = m * <long long>_POW10[frac] + _value(p + frac_start, frac)
        else:
            ok = False
    if ok and digits <= 15:
        v = <double>m / _POW10[frac]
        return PyFloat_FromDouble(-v if neg else v)
    if ok and n < 40:
        memcpy(buf, p, n)
        buf[n] = 0
        return PyFloat_FromDouble(PyOS_string_to_double(buf, NULL, NULL))
    try:
        return float(_text(p, n))
    except ValueError:
        return None


cdef inline bint _is(const char *p, Py_ssize_t n, const char *lit, Py_ssize_t k) noexcept:
    return n == k and memcmp(p, lit, k) == 0


cdef inline void _put(object tup, Py_ssize_t i, object value):
    Py_INCREF(value)                 # PyTuple_SET_ITEM steals a reference
    PyTuple_SET_ITEM(tup, i, value)


def frame_ticks(raw, str tr_id, object received_at, str venue):
    """Ticks of a plain ``0|<tr_id>|<count>|…`` trade frame whose every record is valid;
    ``None`` for anything else (decode that with ``decode_message``)."""
    global _last_ts
    cdef const char *s
    cdef Py_ssize_t n, tn, pos, i, count, carets, total, width, r, j, fs, rec_start
    cdef const char *tr
    cdef Py_ssize_t st[NEEDED]
    cdef Py_ssize_t en[NEEDED]
    cdef char key[14]
    cdef const char *f
    cdef Py_ssize_t fl
    if PyBytes_Check(raw):
        s = PyBytes_AS_STRING(raw)
        n = PyBytes_GET_SIZE(raw)
    elif PyUnicode_Check(raw) and PyUnicode_IS_ASCII(raw):
        s = PyUnicode_AsUTF8AndSize(raw, &n)
    else:
        return None
    if tr_id not in _trade_trs:
        return None
    tr = PyUnicode_AsUTF8AndSize(tr_id, &tn)
    # head: "0|" tr_id "|" count "|"
    if n < tn + 5 or s[0] != 48 or s[1] != 124 or memcmp(s + 2, tr, tn) != 0 or s[2 + tn] != 124:
        return None
    pos = 3 + tn
    i = pos
    while i < n and 48 <= s[i] <= 57:
        i += 1
    if i == pos or i - pos > 6 or i >= n or s[i] != 124:
        return None
    count = <Py_ssize_t>_value(s + pos, i - pos)
    if count == 0:
        return None
    pos = i + 1
    carets = 0
    for i in range(pos, n):
        if s[i] == 94:                  # '^'
            carets += 1
        elif <unsigned char>s[i] >= 128:
            return None                 # the lenient UTF-8 path decides what these bytes mean
    total = carets + 1
    if total % count:
        return None
    width = total // count
    if width < NEEDED:
        return None
    out = []
    for r in range(count):
        rec_start = pos
        for j in range(width):
            fs = pos
            while pos < n and s[pos] != 94:
                pos += 1
            if j < NEEDED:
                st[j] = fs
                en[j] = pos
            pos += 1
        # -- the checks of codec._trade_record_error, ASCII only --------------------------
        f = s + st[F_CODE]
        fl = en[F_CODE] - st[F_CODE]
        if not (fl == 6 and _digits(f, 6) or fl == 7 and f[0] == 81 and _digits(f + 1, 6)):
            return None
        if not (_digits(s + st[F_PRICE], en[F_PRICE] - st[F_PRICE])
                and _digits(s + st[F_VOLUME], en[F_VOLUME] - st[F_VOLUME])
                and _digits(s + st[F_CUM], en[F_CUM] - st[F_CUM])):
            return None
        f = s + st[F_TIME]
        if en[F_TIME] - st[F_TIME] != 6 or not _digits(f, 6) or memcmp(f, b"23", 2) > 0 \
                or memcmp(f + 2, b"59", 2) > 0 or memcmp(f + 4, b"59", 2) > 0:
            return None
        if en[F_DATE] - st[F_DATE] != 8 or not _digits(s + st[F_DATE], 8):
            return None
        # -- timestamp: the shared KST cache, the previous record's when equal -------------
        memcpy(key, s + st[F_DATE], 8)
        memcpy(key + 8, s + st[F_TIME], 6)
        if _last_ts is not None and memcmp(key, _last_key, 14) == 0:
            ts = _last_ts
        else:
            ts = _cache.get(_text(key, 14))
            if ts is None:
                try:
                    ts = _kst_timestamp(_text(key, 8), _text(key + 8, 6))
                except ValueError:      # not a calendar date: the Python path reports it
                    return None
            memcpy(_last_key, key, 14)
            _last_ts = ts
        if (_is(s + st[F_HOUR], en[F_HOUR] - st[F_HOUR], b"0", 1)
                and _is(s + st[F_HALT], en[F_HALT] - st[F_HALT], b"N", 1)
                and _is(s + st[F_MKOP], en[F_MKOP] - st[F_MKOP], b"20", 2)):
            state = ""
        else:
            state = _state_of(tuple(_text(s + rec_start, pos - 1 - rec_start).split("^")))
        tick = (<_Type *>_Tick).tp_alloc(<_Type *>_Tick, 12)    # tuple.__new__(Tick, …)
        _put(tick, 0, _text(s + st[F_CODE], en[F_CODE] - st[F_CODE]))
        _put(tick, 1, ts)
        _put(tick, 2, _int_of_digits(s + st[F_PRICE], en[F_PRICE] - st[F_PRICE]))
        _put(tick, 3, _int_of_digits(s + st[F_VOLUME], en[F_VOLUME] - st[F_VOLUME]))
        _put(tick, 4, _int_of_digits(s + st[F_CUM], en[F_CUM] - st[F_CUM]))
        _put(tick, 5, _int_or_none(s + st[F_CHANGE], en[F_CHANGE] - st[F_CHANGE]))
        _put(tick, 6, _float_or_none(s + st[F_RATE], en[F_RATE] - st[F_RATE]))
        _put(tick, 7, _float_or_none(s + st[F_STRENGTH], en[F_STRENGTH] - st[F_STRENGTH]))
        _put(tick, 8, received_at)
        _put(tick, 9, _source)
        _put(tick, 10, venue)
        _put(tick, 11, state)
        # Every value is atomic (str, int, float, datetime, None): the tuple can be in no
        # reference cycle, so the cyclic GC need never visit it. CPython untracks such exact
        # tuples itself during a collection, but not a subclass like Tick: thousands of live
        # trades (writer queue, coalescer) would otherwise be re-scanned by every collection.
        PyObject_GC_UnTrack(<void *>tick)
        out.append(tick)
    return out
