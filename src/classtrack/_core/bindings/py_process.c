/* bindings/py_process.c - memory of the current process, read in C without spawning.
 *
 * Linux: /proc/self/status gives every size Pympler reports in one read
 * (about 7 us here); the file stays open and is re-read with pread at
 * offset 0 (the kernel regenerates it), and reopened after a fork, since
 * an inherited descriptor names the parent.  /proc/self/smaps_rollup (USS
 * and PSS) costs more (about 25 us for a small process, growing with its
 * mappings), so it is a separate call made only when asked for.
 * Everywhere else these return None and the Python side falls back to
 * getrusage.  State: the descriptor and the pid it belongs to, process-wide
 * like the process it describes; guarded by the GIL.
 */
#include "bindings/py_state.h"

#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <unistd.h>

static int status_fd = -1;
static pid_t status_pid;

#define CT_STATUS_MAX 8192

/* Value in bytes of a "Key:   1234 kB" line, or -1 if absent. */
static long long
status_field(const char *buf, const char *key)
{
    size_t klen = strlen(key);
    const char *p = buf;
    while ((p = strstr(p, key)) != NULL) {
        if ((p == buf || p[-1] == '\n') && p[klen] == ':') {
            char *end;
            long long v = strtoll(p + klen + 1, &end, 10);
            while (*end == ' ') {
                end++;
            }
            if (end[0] == 'k' && end[1] == 'B') {
                v *= 1024;
            }
            return v;
        }
        p += klen;
    }
    return -1;
}

static int
read_status(char *buf, size_t size)
{
    pid_t pid = getpid();
    if (status_fd >= 0 && pid != status_pid) {
        close(status_fd);
        status_fd = -1;
    }
    if (status_fd < 0) {
        status_fd = open("/proc/self/status", O_RDONLY | O_CLOEXEC);
        if (status_fd < 0) {
            return -1;
        }
        status_pid = pid;
    }
    ssize_t n = pread(status_fd, buf, size - 1, 0);
    if (n <= 0) {
        close(status_fd);
        status_fd = -1;
        return -1;
    }
    buf[n] = '\0';
    return 0;
}

/* status() -> (vsz, rss, rss_peak, vm_peak, data, code, lib, stack,
 *              locked, page_tables, major_faults) in bytes, or None */
static PyObject *
core_process_status(PyObject *Py_UNUSED(module), PyObject *Py_UNUSED(ignored))
{
    char buf[CT_STATUS_MAX];
    if (read_status(buf, sizeof(buf)) < 0) {
        Py_RETURN_NONE;
    }
    struct rusage ru;
    long long faults = getrusage(RUSAGE_SELF, &ru) == 0 ? (long long)ru.ru_majflt : 0;
    long long f[10];
    static const char *keys[10] = {"VmSize", "VmRSS", "VmHWM", "VmPeak", "VmData",
                                   "VmExe", "VmLib", "VmStk", "VmLck", "VmPTE"};
    for (int i = 0; i < 10; i++) {
        f[i] = status_field(buf, keys[i]);
    }
    if (f[0] < 0 || f[1] < 0) {
        Py_RETURN_NONE;     /* e.g. a kernel thread, or not Linux's format */
    }
    for (int i = 0; i < 10; i++) {
        if (f[i] < 0) {
            f[i] = 0;
        }
    }
    return Py_BuildValue("(LLLLLLLLLLL)", f[0], f[1], f[2], f[3], f[4], f[5],
                         f[6], f[7], f[8], f[9], faults);
}

/* smaps() -> (rss, pss, uss, swap) in bytes, or None */
static PyObject *
core_process_smaps(PyObject *Py_UNUSED(module), PyObject *Py_UNUSED(ignored))
{
    char buf[CT_STATUS_MAX];
    int fd = open("/proc/self/smaps_rollup", O_RDONLY | O_CLOEXEC);
    if (fd < 0) {
        Py_RETURN_NONE;
    }
    ssize_t n;
    Py_BEGIN_ALLOW_THREADS
    n = read(fd, buf, sizeof(buf) - 1);
    Py_END_ALLOW_THREADS
    close(fd);
    if (n <= 0) {
        Py_RETURN_NONE;
    }
    buf[n] = '\0';
    long long rss = status_field(buf, "Rss");
    long long pss = status_field(buf, "Pss");
    long long pc = status_field(buf, "Private_Clean");
    long long pd = status_field(buf, "Private_Dirty");
    long long swap = status_field(buf, "Swap");
    if (rss < 0 || pss < 0 || pc < 0 || pd < 0) {
        Py_RETURN_NONE;
    }
    return Py_BuildValue("(LLLL)", rss, pss, pc + pd, swap < 0 ? 0 : swap);
}

PyMethodDef ct_process_functions[] = {
    {"process_status", core_process_status, METH_NOARGS,
     "process_status() -> (vsz, rss, rss_peak, vm_peak, data, code, lib, stack, "
     "locked, page_tables, major_faults) in bytes, or None where unavailable"},
    {"process_smaps", core_process_smaps, METH_NOARGS,
     "process_smaps() -> (rss, pss, uss, swap) in bytes, or None"},
    {NULL, NULL, 0, NULL},
};
