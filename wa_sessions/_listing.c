/* The scan's system calls without a Python object per call: list a directory descriptor and
 * lstat every entry relative to it (fstatat with AT_SYMLINK_NOFOLLOW), one tuple per entry.
 *
 * It does exactly what the pure-Python listing of wa_sessions/scan.py does with os.scandir and
 * DirEntry.stat(follow_symlinks=False), and scan.py falls back to that when this module is not
 * built; it only saves building a DirEntry and a stat_result (19 fields) per file.
 *
 * listing(dir_fd) -> iterator of (name, mode, inode, size, mtime_ns), in directory order:
 * - dot-entries ('.', '..', '.cleanup.lock', ...) are left out: they are the tool's own;
 * - names are decoded as os.fsdecode does (UTF-8 with surrogateescape on Linux);
 * - an entry that vanished between readdir and fstatat (ENOENT) is left out;
 * - an entry that cannot be stat'ed for another reason is (name, -1, errno, 0, 0);
 * - a failing readdir raises OSError.
 * `dir_fd` is not consumed: the listing reads a duplicate of it (as os.scandir(fd) does) from the
 * beginning of the directory, and closes that duplicate when exhausted, closed or collected,
 * rewound (as os.scandir does too: the next listing of `dir_fd` starts at the beginning).
 * Memory is one entry at a time, however large the folder.
 *
 * Threads. The GIL is released around each readdir/fstatat (as os.scandir does), so another
 * thread may run while one is inside next(). A busy flag, read and written only with the GIL
 * held (so no lock or atomic is needed, and the hot path pays one test and two stores), makes
 * misuse an exception instead of a use-after-free of the DIR or of its dirent buffer:
 * - next() while another next() of the same listing is in progress (a second thread, or a
 *   finalizer run during the first) raises RuntimeError;
 * - close() while a next() is in progress does not free the DIR under it: it marks the listing
 *   closing and returns; the thread inside next() closes the DIR when it comes back (that call
 *   still returns what it read), and every later next() ends the iteration.
 * The flag guards the whole of next(), tuple building included: decoding a name allocates, an
 * allocation may run the garbage collector and its finalizers, and those may let other threads
 * run while `entry` still points into the DIR's buffer. (The module does not declare itself
 * free-threading safe, so a free-threaded interpreter turns the GIL back on when importing it.)
 */
#define PY_SSIZE_T_CLEAN
#include <Python.h>

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <sys/stat.h>
#include <unistd.h>

typedef struct {
    PyObject_HEAD
    DIR *directory; /* reads (and stats relative to) the duplicate; NULL once exhausted or closed */
    int busy;       /* a next() is in progress (it may be outside the GIL) */
    int closing;    /* close() was called during that next(): it closes the DIR on its way out */
} Listing;

static void listing_close_directory(Listing *self) {
    if (self->directory != NULL) {
        /* the duplicate shares its offset with the caller's descriptor: leave it at the
         * beginning, as os.scandir(fd) does, for whoever lists that descriptor next */
        rewinddir(self->directory);
        closedir(self->directory);
        self->directory = NULL;
    }
}

static void listing_dealloc(Listing *self) {
    listing_close_directory(self);
    Py_TYPE(self)->tp_free((PyObject *)self);
}

/* st_mtim as integer nanoseconds, as os.stat's st_mtime_ns: a C integer while it fits (until the
 * year 2262), a Python integer beyond, so that a crafted far-future mtime is not wrapped round. */
static PyObject *mtime_ns_of(const struct stat *info) {
    long long seconds = (long long)info->st_mtim.tv_sec;
    long long nanoseconds = (long long)info->st_mtim.tv_nsec;
    long long total;
    if (!__builtin_mul_overflow(seconds, 1000000000LL, &total) &&
        !__builtin_add_overflow(total, nanoseconds, &total)) {
        return PyLong_FromLongLong(total);
    }
    PyObject *python_seconds = PyLong_FromLongLong(seconds);
    PyObject *billion = PyLong_FromLong(1000000000L);
    PyObject *python_nanoseconds = PyLong_FromLongLong(nanoseconds);
    PyObject *scaled = NULL;
    PyObject *result = NULL;
    if (python_seconds != NULL && billion != NULL && python_nanoseconds != NULL) {
        scaled = PyNumber_Multiply(python_seconds, billion);
        if (scaled != NULL) {
            result = PyNumber_Add(scaled, python_nanoseconds);
        }
    }
    Py_XDECREF(python_seconds);
    Py_XDECREF(billion);
    Py_XDECREF(python_nanoseconds);
    Py_XDECREF(scaled);
    return result;
}

/* Steals nothing; returns a new tuple (name, mode, inode, size, mtime_ns), or NULL with an error
 * set. `info` NULL: the lstat failed with `error_number`. */
static PyObject *entry_tuple(const char *name, const struct stat *info, int error_number) {
    PyObject *items[5];
    if (info == NULL) {
        items[1] = PyLong_FromLong(-1);
        items[2] = PyLong_FromLong(error_number);
        items[3] = PyLong_FromLong(0);
        items[4] = PyLong_FromLong(0);
    } else {
        items[1] = PyLong_FromLong((long)info->st_mode);
        items[2] = PyLong_FromUnsignedLongLong((unsigned long long)info->st_ino);
        items[3] = PyLong_FromLongLong((long long)info->st_size);
        items[4] = mtime_ns_of(info);
    }
    items[0] = PyUnicode_DecodeFSDefault(name);
    PyObject *tuple = PyTuple_New(5);
    int failed = tuple == NULL;
    for (int index = 0; index < 5; index++) {
        failed |= items[index] == NULL;
    }
    if (failed) {
        for (int index = 0; index < 5; index++) {
            Py_XDECREF(items[index]);
        }
        Py_XDECREF(tuple);
        return NULL;
    }
    for (int index = 0; index < 5; index++) {
        PyTuple_SET_ITEM(tuple, index, items[index]);
    }
    return tuple;
}

/* One step of the iteration; called only by listing_next, with `busy` set. */
static PyObject *listing_next_entry(Listing *self) {
    while (self->directory != NULL && !self->closing) {
        struct dirent *entry;
        struct stat info;
        int status = 0;
        int saved = 0;
        /* the GIL is released around the system calls, as os.scandir does: a hung mount must
         * not stop the run's other threads (the webhook notification) */
        Py_BEGIN_ALLOW_THREADS
        errno = 0;
        entry = readdir(self->directory);
        saved = errno;
        if (entry != NULL && entry->d_name[0] != '.') {
            status = fstatat(dirfd(self->directory), entry->d_name, &info, AT_SYMLINK_NOFOLLOW);
            saved = errno;
        }
        Py_END_ALLOW_THREADS
        if (entry == NULL) {
            listing_close_directory(self);
            if (saved != 0) {
                errno = saved;
                return PyErr_SetFromErrno(PyExc_OSError);
            }
            return NULL; /* exhausted: StopIteration */
        }
        if (entry->d_name[0] == '.') {
            continue;
        }
        if (status != 0) {
            if (saved == ENOENT) {
                continue;
            }
            return entry_tuple(entry->d_name, NULL, saved);
        }
        return entry_tuple(entry->d_name, &info, 0);
    }
    return NULL;
}

static PyObject *listing_next(Listing *self) {
    if (self->busy) {
        PyErr_SetString(PyExc_RuntimeError,
                        "listing: next() while another next() of the same listing is in progress "
                        "(a listing must not be shared between threads)");
        return NULL;
    }
    self->busy = 1;
    PyObject *result = listing_next_entry(self);
    self->busy = 0;
    if (self->closing) { /* close() came while we were inside: we close for it, now it is safe */
        listing_close_directory(self);
    }
    return result;
}

static PyObject *listing_close(Listing *self, PyObject *unused) {
    (void)unused;
    if (self->busy) {
        /* another thread is inside next() (maybe in readdir, outside the GIL): it closes the
         * DIR when it returns, and no next() reads from it again */
        self->closing = 1;
    } else {
        listing_close_directory(self);
    }
    Py_RETURN_NONE;
}

static PyMethodDef listing_methods[] = {
    {"close", (PyCFunction)listing_close, METH_NOARGS, "Close the listing's descriptor now."},
    {NULL, NULL, 0, NULL},
};

static PyTypeObject ListingType = {
    PyVarObject_HEAD_INIT(NULL, 0).tp_name = "wa_sessions._listing.Listing",
    .tp_basicsize = sizeof(Listing),
    .tp_dealloc = (destructor)listing_dealloc,
    .tp_flags = Py_TPFLAGS_DEFAULT,
    .tp_doc = "An open listing of a directory descriptor (see listing()).",
    .tp_iter = PyObject_SelfIter,
    .tp_iternext = (iternextfunc)listing_next,
    .tp_methods = listing_methods,
};

static PyObject *listing(PyObject *module, PyObject *argument) {
    (void)module;
    long fd = PyLong_AsLong(argument);
    if (fd == -1 && PyErr_Occurred()) {
        return NULL;
    }
    if (fd < 0 || fd > INT_MAX) {
        PyErr_SetString(PyExc_ValueError, "listing: not a file descriptor");
        return NULL;
    }
    int duplicate = fcntl((int)fd, F_DUPFD_CLOEXEC, 0);
    if (duplicate < 0) {
        return PyErr_SetFromErrno(PyExc_OSError);
    }
    DIR *directory = fdopendir(duplicate);
    if (directory == NULL) {
        int saved = errno;
        close(duplicate);
        errno = saved;
        return PyErr_SetFromErrno(PyExc_OSError);
    }
    rewinddir(directory); /* the duplicate shares the offset of `fd`: start at the beginning */
    Listing *self = PyObject_New(Listing, &ListingType);
    if (self == NULL) {
        closedir(directory);
        return NULL;
    }
    self->directory = directory;
    self->busy = 0;
    self->closing = 0;
    return (PyObject *)self;
}

static PyMethodDef module_methods[] = {
    {"listing", listing, METH_O,
     "listing(dir_fd) -> iterator of (name, mode, inode, size, mtime_ns): every entry but "
     "dot-entries, lstat'ed relative to dir_fd; (name, -1, errno, 0, 0) when the lstat failed; "
     "vanished entries left out."},
    {NULL, NULL, 0, NULL},
};

static struct PyModuleDef module_definition = {
    PyModuleDef_HEAD_INIT,
    .m_name = "_listing",
    .m_doc = "Directory listing with lstat, in C (see wa_sessions/scan.py).",
    .m_size = -1,
    .m_methods = module_methods,
};

PyMODINIT_FUNC PyInit__listing(void) {
    if (PyType_Ready(&ListingType) < 0) {
        return NULL;
    }
    return PyModule_Create(&module_definition);
}
