/* bindings/py_termwatch.c - SIGTERM, taken by classtrack only while the program has
 * not taken it (``run --follow-fork``'s children write their dump on it).
 *
 * Design.  The handler is installed with sigaction, below Python's signal
 * module, and only over the default disposition:
 *   - Python's own table is not touched: signal.getsignal(SIGTERM) still
 *     says SIG_DFL, and the program's set_wakeup_fd is never replaced;
 *   - the program's signal.signal(SIGTERM, ...) calls sigaction itself and
 *     so replaces this handler outright: from then on the program's
 *     handler is the only one, and classtrack writes its dump at the
 *     program's real exit (os._exit, atexit) instead.
 * The handler does one async-signal-safe thing: it writes a byte to a pipe
 * (non-blocking write end).  A Python thread reading the pipe writes the
 * dump and then calls term_die(), which restores the default action and
 * raises SIGTERM in that thread: the process dies of SIGTERM, as it would
 * have without classtrack (its parent sees -15), wherever its main thread
 * is, even asleep in a lock.
 *
 * Fork.  A child inherits the handler and the pipe.  The handler compares
 * getpid() with the pid it was installed for; in a child that has not
 * installed its own (the window before its at-fork hook runs) it restores
 * the default action and re-raises, so the child dies as without
 * classtrack and never wakes its parent's thread.
 *
 * State: the descriptor and the pid, process-wide like a disposition;
 * written under the GIL, read by the handler (sig_atomic_t).
 */
#include "bindings/py_state.h"

#include <errno.h>
#include <limits.h>
#include <signal.h>
#include <string.h>
#include <unistd.h>

static volatile sig_atomic_t watch_fd = -1;
static volatile sig_atomic_t watch_pid = 0;

static void
on_term(int signo)
{
    int saved = errno;
    int fd = watch_fd;
    if (fd < 0 || (pid_t)watch_pid != getpid()) {
        /* not this process's: die as the default action would (SIGTERM
         * is blocked while this runs, so it is delivered on return) */
        struct sigaction dfl;
        memset(&dfl, 0, sizeof(dfl));
        dfl.sa_handler = SIG_DFL;
        sigemptyset(&dfl.sa_mask);
        (void)sigaction(signo, &dfl, NULL);
        (void)raise(signo);
    }
    else {
        char byte = 'T';
        ssize_t n = write(fd, &byte, 1);
        (void)n;    /* a full pipe already holds a wake-up */
    }
    errno = saved;
}

static int
handler_is(const struct sigaction *sa, void (*fn)(int))
{
    return !(sa->sa_flags & SA_SIGINFO) && sa->sa_handler == fn;
}

/* term_watch(fd) -> bool: install the handler, writing to fd, if SIGTERM
 * is at its default disposition (or already ours: a forked child takes it
 * over with its own pipe).  False: the program handles or ignores it. */
static PyObject *
core_term_watch(PyObject *Py_UNUSED(module), PyObject *arg)
{
    long fd = PyLong_AsLong(arg);
    if (fd == -1 && PyErr_Occurred()) {
        return NULL;
    }
    if (fd < 0 || fd > INT_MAX) {
        PyErr_SetString(PyExc_ValueError, "term_watch: the descriptor must be >= 0");
        return NULL;
    }
    struct sigaction old;
    if (sigaction(SIGTERM, NULL, &old) != 0) {
        return PyErr_SetFromErrno(PyExc_OSError);
    }
    if (!handler_is(&old, SIG_DFL) && !handler_is(&old, on_term)) {
        Py_RETURN_FALSE;
    }
    watch_fd = -1;
    watch_pid = (sig_atomic_t)getpid();
    watch_fd = (sig_atomic_t)fd;
    struct sigaction sa;
    memset(&sa, 0, sizeof(sa));
    sa.sa_handler = on_term;
    sa.sa_flags = SA_RESTART;   /* the program's system calls go on as if nothing came */
    sigemptyset(&sa.sa_mask);
    if (sigaction(SIGTERM, &sa, NULL) != 0) {
        watch_fd = -1;
        return PyErr_SetFromErrno(PyExc_OSError);
    }
    Py_RETURN_TRUE;
}

/* term_owned() -> bool: SIGTERM's handler is still this one. */
static PyObject *
core_term_owned(PyObject *Py_UNUSED(module), PyObject *Py_UNUSED(arg))
{
    struct sigaction cur;
    if (sigaction(SIGTERM, NULL, &cur) != 0) {
        return PyErr_SetFromErrno(PyExc_OSError);
    }
    return PyBool_FromLong(handler_is(&cur, on_term));
}

/* term_unwatch(): back to the default disposition, if still ours. */
static PyObject *
core_term_unwatch(PyObject *Py_UNUSED(module), PyObject *Py_UNUSED(arg))
{
    struct sigaction cur;
    if (sigaction(SIGTERM, NULL, &cur) != 0) {
        return PyErr_SetFromErrno(PyExc_OSError);
    }
    if (handler_is(&cur, on_term)) {
        struct sigaction dfl;
        memset(&dfl, 0, sizeof(dfl));
        dfl.sa_handler = SIG_DFL;
        sigemptyset(&dfl.sa_mask);
        if (sigaction(SIGTERM, &dfl, NULL) != 0) {
            return PyErr_SetFromErrno(PyExc_OSError);
        }
    }
    watch_fd = -1;
    Py_RETURN_NONE;
}

/* term_die(): die of SIGTERM now, as its default action does.  Returns
 * (None) only if the process survived it, which it should not. */
static PyObject *
core_term_die(PyObject *Py_UNUSED(module), PyObject *Py_UNUSED(arg))
{
    struct sigaction dfl;
    memset(&dfl, 0, sizeof(dfl));
    dfl.sa_handler = SIG_DFL;
    sigemptyset(&dfl.sa_mask);
    (void)sigaction(SIGTERM, &dfl, NULL);
    sigset_t term;
    sigemptyset(&term);
    sigaddset(&term, SIGTERM);
    (void)pthread_sigmask(SIG_UNBLOCK, &term, NULL);
    (void)raise(SIGTERM);
    Py_RETURN_NONE;
}

PyMethodDef ct_termwatch_functions[] = {
    {"term_watch", core_term_watch, METH_O,
     "term_watch(fd) -> bool: take SIGTERM at its default disposition, waking fd."},
    {"term_owned", core_term_owned, METH_NOARGS,
     "term_owned() -> bool: SIGTERM's handler is still classtrack's."},
    {"term_unwatch", core_term_unwatch, METH_NOARGS,
     "term_unwatch(): give SIGTERM back its default disposition, if still ours."},
    {"term_die", core_term_die, METH_NOARGS,
     "term_die(): die of SIGTERM, as its default action does."},
    {NULL, NULL, 0, NULL},
};
