# cython: language_level=3, boundscheck=False, wraparound=False
"""Compiled trade INSERT for the SQLite writer that binds its parameters without the GIL.

Why: binding 13 Python values a trade through the ``sqlite3`` module holds the GIL for
≈ 1 µs a trade, which the event loop thread waits for while it should decode and detect (at
full speed the loop spent a sixth of its time waiting on the writer). Here the GIL is held only
to read each Tick into a C row (≈ 0.1 µs); ``BEGIN``, the binding, the multi-row statements and
``COMMIT`` run without it.

The SQLite functions are not linked: :mod:`.raw_sqlite` takes their addresses from the very
library Python's ``sqlite3`` module runs on (two copies of SQLite in one process would break
each other's file locks). Values are converted exactly as ``layout.trade_rows`` does; a tick
with anything unusual (an int past 64 bits, a naive time, an unknown venue, a non-finite rate,
…) makes :meth:`TradeInserter.write` return None before anything is written, and the caller
stores that batch through the ``sqlite3`` module, which raises what ``trade_rows`` raises.
"""

from cpython.float cimport PyFloat_AS_DOUBLE, PyFloat_CheckExact
from cpython.long cimport PyLong_AsLongLong, PyLong_CheckExact
from cpython.tuple cimport PyTuple_Check, PyTuple_GET_ITEM, PyTuple_GET_SIZE
from cpython.unicode cimport PyUnicode_CheckExact
from libc.math cimport isfinite, rint
from libc.stdlib cimport free, malloc
from libc.stdint cimport uintptr_t

cdef extern from "Python.h":
    const char* PyUnicode_AsUTF8AndSize(object, Py_ssize_t*) except NULL

cdef extern from *:
    """
    typedef struct kd_sqlite3 kd_sqlite3;
    typedef struct kd_stmt kd_stmt;
    """
    ctypedef struct kd_sqlite3
    ctypedef struct kd_stmt

ctypedef int (*open_v2_f)(const char*, kd_sqlite3**, int, const char*) noexcept nogil
ctypedef int (*close_v2_f)(kd_sqlite3*) noexcept nogil
ctypedef int (*prepare_v2_f)(kd_sqlite3*, const char*, int, kd_stmt**, const char**) noexcept nogil
ctypedef int (*stmt_f)(kd_stmt*) noexcept nogil
ctypedef int (*bind_int64_f)(kd_stmt*, int, long long) noexcept nogil
ctypedef int (*bind_double_f)(kd_stmt*, int, double) noexcept nogil
ctypedef int (*bind_null_f)(kd_stmt*, int) noexcept nogil
ctypedef int (*bind_text_f)(kd_stmt*, int, const char*, int, void*) noexcept nogil
ctypedef int (*exec_f)(kd_sqlite3*, const char*, void*, void*, char**) noexcept nogil
ctypedef int (*db_int_f)(kd_sqlite3*) noexcept nogil
ctypedef const char* (*errmsg_f)(kd_sqlite3*) noexcept nogil
ctypedef int (*busy_timeout_f)(kd_sqlite3*, int) noexcept nogil

cdef open_v2_f c_open_v2 = NULL
cdef close_v2_f c_close_v2 = NULL
cdef prepare_v2_f c_prepare_v2 = NULL
cdef stmt_f c_step = NULL
cdef stmt_f c_reset = NULL
cdef stmt_f c_finalize = NULL
cdef bind_int64_f c_bind_int64 = NULL
cdef bind_double_f c_bind_double = NULL
cdef bind_null_f c_bind_null = NULL
cdef bind_text_f c_bind_text = NULL
cdef exec_f c_exec = NULL
cdef db_int_f c_changes = NULL
cdef db_int_f c_errcode = NULL
cdef errmsg_f c_errmsg = NULL
cdef busy_timeout_f c_busy_timeout = NULL

#: SQLite's own constants (sqlite3.h)
DEF OK = 0
DEF DONE = 101
DEF OPEN_READWRITE = 0x2
DEF INTS = 12                    # the integer columns before stock_code
DEF MAX_SIZES = 16

cdef object _raise_error = None  # (primary code, message) → the sqlite3 module's exception


def install(dict addresses, raise_error):
    """Take the SQLite functions' addresses (from raw_sqlite) and the error mapper."""
    global c_open_v2, c_close_v2, c_prepare_v2, c_step, c_reset, c_finalize, c_bind_int64
    global c_bind_double, c_bind_null, c_bind_text, c_exec, c_changes, c_errcode, c_errmsg
    global c_busy_timeout, _raise_error
    c_open_v2 = <open_v2_f><uintptr_t>addresses["sqlite3_open_v2"]
    c_close_v2 = <close_v2_f><uintptr_t>addresses["sqlite3_close_v2"]
    c_prepare_v2 = <prepare_v2_f><uintptr_t>addresses["sqlite3_prepare_v2"]
    c_step = <stmt_f><uintptr_t>addresses["sqlite3_step"]
    c_reset = <stmt_f><uintptr_t>addresses["sqlite3_reset"]
    c_finalize = <stmt_f><uintptr_t>addresses["sqlite3_finalize"]
    c_bind_int64 = <bind_int64_f><uintptr_t>addresses["sqlite3_bind_int64"]
    c_bind_double = <bind_double_f><uintptr_t>addresses["sqlite3_bind_double"]
    c_bind_null = <bind_null_f><uintptr_t>addresses["sqlite3_bind_null"]
    c_bind_text = <bind_text_f><uintptr_t>addresses["sqlite3_bind_text"]
    c_exec = <exec_f><uintptr_t>addresses["sqlite3_exec"]
    c_changes = <db_int_f><uintptr_t>addresses["sqlite3_changes"]
    c_errcode = <db_int_f><uintptr_t>addresses["sqlite3_errcode"]
    c_errmsg = <errmsg_f><uintptr_t>addresses["sqlite3_errmsg"]
    c_busy_timeout = <busy_timeout_f><uintptr_t>addresses["sqlite3_busy_timeout"]
    _raise_error = raise_error


cdef struct Row:
    long long v[INTS]
    unsigned int nulls               # bit j: column j is NULL
    const char* code
    int code_len


cdef inline bint _int64(object x, long long* out):
    """An exact int that fits 64 bits (what sqlite3 binds as INTEGER)."""
    if not PyLong_CheckExact(x):
        return False
    try:
        out[0] = PyLong_AsLongLong(x)
    except OverflowError:
        return False
    return True


cdef inline int _basis_points(object x, long long* out) noexcept:
    """round(x * 100) for a rate: 1 = value, 0 = NULL, -1 = unusual (the general path)."""
    cdef double d
    if x is None:
        return 0
    if PyFloat_CheckExact(x):
        d = PyFloat_AS_DOUBLE(x) * 100.0
        if not isfinite(d) or d > 9.0e15 or d < -9.0e15:
            return -1
        out[0] = <long long>rint(d)   # round half to even, as Python's round()
        return 1
    if PyLong_CheckExact(x):
        try:
            out[0] = PyLong_AsLongLong(x)
        except OverflowError:
            return -1
        if out[0] > 90071992547409 or out[0] < -90071992547409:
            return -1
        out[0] *= 100
        return 1
    return -1


cdef class TradeInserter:
    """One raw connection to the writer's database file, used by the writer thread only."""

    cdef kd_sqlite3* db
    cdef kd_stmt* stmts[MAX_SIZES]
    cdef int sizes[MAX_SIZES]
    cdef int n_sizes
    cdef kd_stmt* one
    cdef dict venues, sources
    cdef object epoch_parts
    cdef long long kst_seconds
    # one batch's conversion caches (reset by write): ticks of one read share their time and
    # receipt time objects
    cdef dict ts_cache
    cdef object last_ts, last_r
    cdef long long ts_vals[4]
    cdef long long last_recv

    def __cinit__(self):
        self.db = NULL
        self.one = NULL
        self.n_sizes = 0

    def __init__(self, str path, int busy_timeout_ms, str insert_one, dict multi_inserts,
                 dict venues, dict sources, epoch_parts, long long kst_seconds):
        """Open ``path`` (it exists: the sqlite3 connection made it) and prepare the INSERTs:
        ``insert_one`` and ``multi_inserts`` ({rows: SQL}, the backend's statement sizes)."""
        if c_open_v2 == NULL:
            raise RuntimeError("SQLite functions not installed")
        self.venues, self.sources = venues, sources
        self.epoch_parts, self.kst_seconds = epoch_parts, kst_seconds
        cdef bytes name = path.encode("utf-8")
        cdef const char* cname = name
        cdef int rc
        with nogil:
            rc = c_open_v2(cname, &self.db, OPEN_READWRITE, NULL)
        if rc != OK:
            self._fail(rc)
        c_busy_timeout(self.db, busy_timeout_ms)
        self._exec(b"PRAGMA synchronous=NORMAL")
        if len(multi_inserts) > MAX_SIZES:
            raise ValueError(f"at most {MAX_SIZES} statement sizes")
        for k in sorted(multi_inserts, reverse=True):      # largest first
            self.stmts[self.n_sizes] = self._prepare(multi_inserts[k])
            self.sizes[self.n_sizes] = k
            self.n_sizes += 1
        self.one = self._prepare(insert_one)

    cdef kd_stmt* _prepare(self, str sql) except NULL:
        cdef bytes text = sql.encode("utf-8")
        cdef const char* ctext = text
        cdef int size = <int>len(text), rc
        cdef kd_stmt* stmt = NULL
        with nogil:                    # parsing a 2,048-row INSERT takes milliseconds
            rc = c_prepare_v2(self.db, ctext, size, &stmt, NULL)
        if rc != OK or stmt == NULL:
            self._fail(rc)
        return stmt

    cdef int _fail(self, int rc) except -1:
        msg = c_errmsg(self.db).decode("utf-8", "replace") if self.db != NULL else "out of memory"
        code = c_errcode(self.db) if self.db != NULL else rc
        _raise_error(code & 0xFF, msg)
        return -1

    cdef int _exec(self, const char* sql) except -1:
        cdef int rc
        with nogil:
            rc = c_exec(self.db, sql, NULL, NULL, NULL)
        if rc != OK:
            self._fail(rc)
        return 0

    cdef bint _fill(self, object t, Row* row) except -1:
        """Tick → C row with trade_rows' conversions; False: not an ordinary tick."""
        cdef long long sec, us
        cdef double r
        cdef Py_ssize_t size
        cdef int got
        if not PyTuple_Check(t) or PyTuple_GET_SIZE(t) < 11:
            return False
        row.nulls = 0
        ts = <object>PyTuple_GET_ITEM(t, 1)
        if ts is not self.last_ts:
            hit = self.ts_cache.get(ts)
            if hit is None:
                try:
                    parts = self.epoch_parts(ts)     # naive → ValueError: the general path says so
                except (ValueError, TypeError, AttributeError, OverflowError):
                    return False
                if not _int64(parts[0], &sec) or not _int64(parts[1], &us):
                    return False
                hit = self.ts_cache[ts] = (sec, us, (sec + self.kst_seconds) // 86400, sec * 1_000_000 + us)
            self.ts_vals[0], self.ts_vals[1], self.ts_vals[2], self.ts_vals[3] = hit
            self.last_ts = ts
        rv = <object>PyTuple_GET_ITEM(t, 8)
        if rv is not self.last_r:
            if not PyFloat_CheckExact(rv):
                return False
            r = PyFloat_AS_DOUBLE(rv) * 1_000_000.0
            if not isfinite(r) or r > 4.0e18 or r < -4.0e18:   # receipt − trade time fits 64 bits
                return False
            self.last_recv = <long long>rint(r)
            self.last_r = rv
        if not _int64(<object>PyTuple_GET_ITEM(t, 4), &row.v[0]):
            return False
        row.v[1] = self.ts_vals[0]
        row.v[2] = self.last_recv - self.ts_vals[3]
        if not _int64(<object>PyTuple_GET_ITEM(t, 2), &row.v[3]):
            return False
        if not _int64(<object>PyTuple_GET_ITEM(t, 3), &row.v[4]):
            return False
        ch = <object>PyTuple_GET_ITEM(t, 5)
        if ch is None:
            row.nulls |= 1 << 5
        elif not _int64(ch, &row.v[5]):
            return False
        got = _basis_points(<object>PyTuple_GET_ITEM(t, 6), &row.v[6])
        if got < 0:
            return False
        if got == 0:
            row.nulls |= 1 << 6
        got = _basis_points(<object>PyTuple_GET_ITEM(t, 7), &row.v[7])
        if got < 0:
            return False
        if got == 0:
            row.nulls |= 1 << 7
        row.v[8] = self.ts_vals[1]
        row.v[9] = self.ts_vals[2]
        venue = self.venues.get(<object>PyTuple_GET_ITEM(t, 10))
        source = self.sources.get(<object>PyTuple_GET_ITEM(t, 9))
        if venue is None or source is None:
            return False
        row.v[10] = <long long>venue
        row.v[11] = <long long>source
        code = <object>PyTuple_GET_ITEM(t, 0)
        if not PyUnicode_CheckExact(code):
            return False
        row.code = PyUnicode_AsUTF8AndSize(code, &size)   # lives as long as the tick
        if size > 0x7FFFFFFF:
            return False
        row.code_len = <int>size
        return True

    def write(self, ticks, str alert_sql, list alert_rows):
        """One transaction: the trades, then the alert rows; (trades inserted, alerts inserted),
        or None (nothing written) when a tick is not ordinary: store the batch the general way."""
        if self.db == NULL:
            raise RuntimeError("TradeInserter is closed")
        cdef Py_ssize_t n = len(ticks)
        cdef Row* rows = <Row*>malloc((n if n else 1) * sizeof(Row))
        if rows == NULL:
            raise MemoryError()
        cdef Py_ssize_t i
        cdef int inserted = 0, alerts_inserted = 0
        self.ts_cache, self.last_ts, self.last_r = {}, None, None
        try:
            for i in range(n):
                if not self._fill(ticks[i], &rows[i]):
                    return None
            self._exec(b"BEGIN IMMEDIATE")
            try:
                if n:
                    inserted = self._insert(rows, n)
                if alert_rows:
                    alerts_inserted = self._insert_generic(alert_sql, alert_rows)
                self._exec(b"COMMIT")
            except BaseException:
                with nogil:
                    c_exec(self.db, b"ROLLBACK", NULL, NULL, NULL)
                raise
        finally:
            free(rows)
        return inserted, alerts_inserted

    cdef int _insert(self, Row* rows, Py_ssize_t n) except -1:
        """The rows through the largest statements that fit, then one by one; rows inserted."""
        cdef Py_ssize_t i = 0
        cdef int s, k, rc = DONE, total = 0
        cdef kd_stmt* stmt
        with nogil:
            for s in range(self.n_sizes + 1):
                if s < self.n_sizes:
                    stmt, k = self.stmts[s], self.sizes[s]
                else:
                    stmt, k = self.one, 1
                while n - i >= k:
                    rc = _bind_rows(stmt, rows + i, k)
                    if rc == OK:
                        rc = c_step(stmt)
                    c_reset(stmt)
                    if rc != DONE:
                        break
                    total += c_changes(self.db)
                    i += k
                if rc != DONE:
                    break
        if rc != DONE:
            self._fail(rc)
        return total

    cdef int _insert_generic(self, str sql, list rows) except -1:
        """Rows of Python values (None, int, float, str) through one prepared statement."""
        cdef kd_stmt* stmt = self._prepare(sql)
        cdef int rc = OK, total = 0, j
        cdef long long x
        cdef Py_ssize_t size
        cdef const char* text
        try:
            for row in rows:
                j = 0
                for value in row:
                    j += 1
                    if value is None:
                        rc = c_bind_null(stmt, j)
                    elif isinstance(value, int):       # bool too, as sqlite3 binds it
                        if not _int64(int(value), &x):
                            raise OverflowError("Python int too large to convert to SQLite INTEGER")
                        rc = c_bind_int64(stmt, j, x)
                    elif isinstance(value, float):
                        rc = c_bind_double(stmt, j, value)
                    elif isinstance(value, str):
                        text = PyUnicode_AsUTF8AndSize(value, &size)
                        rc = c_bind_text(stmt, j, text, <int>size, <void*><Py_ssize_t>-1)   # SQLITE_TRANSIENT
                    else:
                        raise TypeError(f"cannot store {type(value).__name__} in an alert row")
                    if rc != OK:
                        self._fail(rc)
                with nogil:
                    rc = c_step(stmt)
                c_reset(stmt)
                if rc != DONE:
                    self._fail(rc)
                total += c_changes(self.db)
        finally:
            c_finalize(stmt)
        return total

    def close(self):
        """Finalize the statements and close the connection (idempotent)."""
        cdef int s
        for s in range(self.n_sizes):
            c_finalize(self.stmts[s])
        self.n_sizes = 0
        if self.one != NULL:
            c_finalize(self.one)
            self.one = NULL
        if self.db != NULL:
            c_close_v2(self.db)
            self.db = NULL

    def __dealloc__(self):
        self.close()


cdef inline int _bind_rows(kd_stmt* stmt, Row* rows, int k) noexcept nogil:
    cdef int r, j, p = 1, rc
    cdef Row* row
    for r in range(k):
        row = rows + r
        for j in range(INTS):
            if row.nulls & (1 << j):
                rc = c_bind_null(stmt, p)
            else:
                rc = c_bind_int64(stmt, p, row.v[j])
            if rc != OK:
                return rc
            p += 1
        rc = c_bind_text(stmt, p, row.code, row.code_len, NULL)      # SQLITE_STATIC
        if rc != OK:
            return rc
        p += 1
    return OK
