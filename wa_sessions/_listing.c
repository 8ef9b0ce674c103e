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

static PyObject *entry_tuple(const char *name, long mode, unsigned long long inode, long long size,
                             long long mtime_ns) {
    PyObject *items[5] = {
        PyUnicode_DecodeFSDefault(name),   PyLong_FromLong(mode),         PyLong_FromUnsignedLongLong(inode),
        PyLong_FromLongLong(size),         PyLong_FromLongLong(mtime_ns),
    };
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

static PyObject *listing_next(Listing *self) {
    while (self->directory != NULL) {
        errno = 0;
        struct dirent *entry = readdir(self->directory);
        if (entry == NULL) {
            int saved = errno;
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
        struct stat info;
        if (fstatat(dirfd(self->directory), entry->d_name, &info, AT_SYMLINK_NOFOLLOW) != 0) {
            if (errno == ENOENT) {
                continue;
            }
            return entry_tuple(entry->d_name, -1, (unsigned long long)errno, 0, 0);
        }
        long long mtime_ns = (long long)info.st_mtim.tv_sec * 1000000000LL + (long long)info.st_mtim.tv_nsec;
        return entry_tuple(entry->d_name, (long)info.st_mode, (unsigned long long)info.st_ino,
                           (long long)info.st_size, mtime_ns);
    }
    return NULL;
}

static PyObject *listing_close(Listing *self, PyObject *unused) {
    (void)unused;
    listing_close_directory(self);
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
