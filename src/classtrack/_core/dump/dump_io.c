/* dump_io.c - the dump's raw file access, shared by the writer and the
 * reader.
 *
 * dump_stats(path) and load_stats(path) open the file unbuffered (exactly
 * io.FileIO): there is no buffer of the file object's own between its
 * read()/write() and the descriptor, so reading and writing the
 * descriptor directly is what those methods would do, without a bytes
 * object per chunk and with the GIL released around each system call.
 * Any other file object is used through its methods.
 */
#include "base/modobjs.h"
#include "dump/dumpfmt.h"

#include <errno.h>
#include <unistd.h>

int
ct_dump_raw_fd(PyObject *module, PyObject *file, int writing)
{
    PyObject *fileio = ct_modobjs_of(module)->fileio_type;
    if (!Py_IS_TYPE(file, (PyTypeObject *)fileio)) {
        return -1;
    }
    /* raises ValueError when the file is closed */
    PyObject *r = PyObject_CallMethod(file, writing ? "writable" : "readable", NULL);
    if (r == NULL) {
        return -2;
    }
    int able = PyObject_IsTrue(r);
    Py_DECREF(r);
    if (able <= 0) {
        return able < 0 ? -2 : -1;  /* its own method says what is wrong */
    }
    int fd = PyObject_AsFileDescriptor(file);
    return fd < 0 ? -2 : fd;
}

Py_ssize_t
ct_dump_fd_read(int fd, unsigned char *dst, size_t n)
{
    for (;;) {
        ssize_t got;
        Py_BEGIN_ALLOW_THREADS
        got = read(fd, dst, n);
        Py_END_ALLOW_THREADS
        if (got >= 0) {
            return (Py_ssize_t)got;
        }
        if (errno != EINTR) {
            PyErr_SetFromErrno(PyExc_OSError);
            return -1;
        }
        if (PyErr_CheckSignals() < 0) {
            return -1;
        }
    }
}

int
ct_dump_fd_write(int fd, const unsigned char *p, size_t n)
{
    while (n > 0) {
        size_t chunk = n < CT_DUMP_FD_CHUNK ? n : CT_DUMP_FD_CHUNK;
        ssize_t got;
        Py_BEGIN_ALLOW_THREADS
        got = write(fd, p, chunk);
        Py_END_ALLOW_THREADS
        if (got < 0) {
            if (errno == EINTR) {
                if (PyErr_CheckSignals() < 0) {
                    return -1;
                }
                continue;
            }
            PyErr_SetFromErrno(PyExc_OSError);
            return -1;
        }
        p += got;
        n -= (size_t)got;
    }
    return 0;
}
