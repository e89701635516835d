/* An LD_PRELOAD shim for scripts/profile-bench, not part of Spine: it counts the heap calls of
 * the process it is loaded into and holds the process at its cleanup so that the script can read
 * the database's counters before the bench deletes its rows.
 *
 * - malloc, calloc, realloc, free, posix_memalign, aligned_alloc: counted (atomics: libuv and
 *   libcurl have threads), then passed to glibc's __libc_* functions (no dlsym: dlsym itself
 *   allocates).
 * - send, recv: counted with their bytes (libpq's traffic with the server).
 * - PQconnectdb(conninfo) without "application_name" (spine-bench's engine connections carry
 *   one; its startup and its cleanup connect without): writes the counters and /proc/self/io to
 *   $SPINE_PROF_HOLD/held.N, then blocks opening the FIFO $SPINE_PROF_HOLD/go until the script
 *   opens it for writing, and only then connects. Without SPINE_PROF_HOLD it only counts.
 *
 * Build: cc -O2 -shared -fPIC -o shim.so profile-shim.c -ldl */
#define _GNU_SOURCE
#include <dlfcn.h>
#include <fcntl.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/types.h>
#include <unistd.h>

extern void *__libc_malloc(size_t);
extern void *__libc_calloc(size_t, size_t);
extern void *__libc_realloc(void *, size_t);
extern void __libc_free(void *);
extern void *__libc_memalign(size_t, size_t);

static atomic_ulong n_malloc, n_calloc, n_realloc, n_free, n_memalign, bytes;

void *malloc(size_t n) {
  atomic_fetch_add_explicit(&n_malloc, 1, memory_order_relaxed);
  atomic_fetch_add_explicit(&bytes, n, memory_order_relaxed);
  return __libc_malloc(n);
}

void *calloc(size_t k, size_t n) {
  atomic_fetch_add_explicit(&n_calloc, 1, memory_order_relaxed);
  atomic_fetch_add_explicit(&bytes, k * n, memory_order_relaxed);
  return __libc_calloc(k, n);
}

void *realloc(void *p, size_t n) {
  atomic_fetch_add_explicit(&n_realloc, 1, memory_order_relaxed);
  atomic_fetch_add_explicit(&bytes, n, memory_order_relaxed);
  return __libc_realloc(p, n);
}

void free(void *p) {
  if (p) atomic_fetch_add_explicit(&n_free, 1, memory_order_relaxed);
  __libc_free(p);
}

int posix_memalign(void **out, size_t align, size_t n) {
  atomic_fetch_add_explicit(&n_memalign, 1, memory_order_relaxed);
  void *p = __libc_memalign(align, n);
  if (!p) return 12; /* ENOMEM */
  *out = p;
  return 0;
}

void *aligned_alloc(size_t align, size_t n) {
  atomic_fetch_add_explicit(&n_memalign, 1, memory_order_relaxed);
  return __libc_memalign(align, n);
}

/* libpq talks to the server through send() and recv() (MSG_NOSIGNAL): their bytes are the
 * wire traffic with PostgreSQL (the process has no other sockets in the bench). */
static atomic_ulong n_send, n_recv, sent, received;

ssize_t send(int fd, const void *buf, size_t n, int flags) {
  static ssize_t (*next)(int, const void *, size_t, int);
  if (!next) next = (ssize_t(*)(int, const void *, size_t, int))dlsym(RTLD_NEXT, "send");
  ssize_t r = next(fd, buf, n, flags);
  atomic_fetch_add_explicit(&n_send, 1, memory_order_relaxed);
  if (r > 0) atomic_fetch_add_explicit(&sent, (unsigned long)r, memory_order_relaxed);
  return r;
}

ssize_t recv(int fd, void *buf, size_t n, int flags) {
  static ssize_t (*next)(int, void *, size_t, int);
  if (!next) next = (ssize_t(*)(int, void *, size_t, int))dlsym(RTLD_NEXT, "recv");
  ssize_t r = next(fd, buf, n, flags);
  atomic_fetch_add_explicit(&n_recv, 1, memory_order_relaxed);
  if (r > 0) atomic_fetch_add_explicit(&received, (unsigned long)r, memory_order_relaxed);
  return r;
}

typedef struct pg_conn PGconn;

/* Writes the counters and /proc/self/io to `path`. */
static void dump(const char *path) {
  FILE *f = fopen(path, "w");
  if (!f) return;
  fprintf(f, "malloc %lu\ncalloc %lu\nrealloc %lu\nfree %lu\nmemalign %lu\nalloc_bytes %lu\n",
          n_malloc, n_calloc, n_realloc, n_free, n_memalign, bytes);
  fprintf(f, "send_calls %lu\nsend_bytes %lu\nrecv_calls %lu\nrecv_bytes %lu\n", n_send, sent,
          n_recv, received);
  struct rusage ru;
  getrusage(RUSAGE_SELF, &ru);
  fprintf(f, "cpu_user_us %ld\ncpu_sys_us %ld\n",
          (long)ru.ru_utime.tv_sec * 1000000 + (long)ru.ru_utime.tv_usec,
          (long)ru.ru_stime.tv_sec * 1000000 + (long)ru.ru_stime.tv_usec);
  FILE *io = fopen("/proc/self/io", "r");
  char line[128];
  while (io && fgets(line, sizeof line, io)) {
    char *colon = strchr(line, ':');
    if (colon) *colon = ' ';
    fputs(line, f);
  }
  if (io) fclose(io);
  fclose(f);
}

PGconn *PQconnectdb(const char *conninfo) {
  static PGconn *(*next)(const char *);
  static int held;
  if (!next) next = (PGconn * (*)(const char *)) dlsym(RTLD_NEXT, "PQconnectdb");
  const char *dir = getenv("SPINE_PROF_HOLD");
  if (dir && !strstr(conninfo, "application_name")) {
    char path[512], tmp[520];
    snprintf(path, sizeof path, "%s/held.%d", dir, ++held);
    snprintf(tmp, sizeof tmp, "%s.tmp", path);
    dump(tmp);
    rename(tmp, path); /* the script sees the file whole */
    snprintf(path, sizeof path, "%s/go", dir);
    int fd = open(path, O_RDONLY); /* blocks until the script opens it for writing */
    if (fd >= 0) close(fd);
  }
  return next(conninfo);
}
