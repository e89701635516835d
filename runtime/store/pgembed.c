/* The embedded default database: a private PostgreSQL cluster under $SPINE_HOME, created with
 * initdb, started and stopped with pg_ctl, listening only on a Unix socket in /tmp/spine-<hash>.
 * Owns the cluster's files, its authentication rules (pg_hba.conf, pg_ident.conf: peer, for the
 * operating system user who runs Spine only), roles `spine` and `postgres`, and the children it
 * forks (as the `postgres` user when root).
 * Never shells out with built strings, never kills by process name, never runs in a callback. */
#define _DEFAULT_SOURCE /* flock, realpath, setgroups, getgrouplist */
#include "pgembed.h"
#include "pgembed_auth.h"

#include <errno.h>
#include <fcntl.h>
#include <grp.h>
#include <libgen.h>
#include <limits.h>
#include <pwd.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <sys/types.h>
#include <sys/wait.h>
#include <unistd.h>

#include <libpq-fe.h>

#define DEFAULT_PGBIN "/usr/lib/postgresql/15/bin"
#define PG_USER       "postgres" /* the system user the server runs as when we are root */
#define PG_ADMIN      "postgres" /* the cluster's superuser: provisions role and database */
#define PG_ROLE       "spine"    /* the role Spine works as: owns database spine, no superuser */
#define PG_PORT       SPINE_PGEMBED_PORT
#define TAIL_MAX      200 /* bytes of a child's output kept for the error message */
#define MAX_GROUPS    64

/* Who the PostgreSQL programs run as: ourselves, or (when we are root) the `postgres` user,
 * whose groups are looked up in the parent so the child only makes system calls. */
typedef struct runas {
  int drop; /* 1: setgroups/setgid/setuid to the fields below in the child */
  uid_t uid;
  gid_t gid;
  int ngroups;
  gid_t groups[MAX_GROUPS];
} runas;

/* ---- small helpers ---- */

static int fits(int n, size_t size) {
  return n >= 0 && (size_t)n < size;
}

static int exists(const char *path) {
  struct stat st;
  return stat(path, &st) == 0;
}

static int initialized(const char *datadir) {
  char p[1300];
  if (!fits(snprintf(p, sizeof p, "%s/PG_VERSION", datadir), sizeof p)) return 0;
  return exists(p);
}

/* FNV-1a, 64 bits, then MurmurHash3's finalizer: names the socket directory after the home
 * path. Without the finalizer paths differing in their last byte share most high bits. */
static uint64_t path_hash(const char *s) {
  uint64_t h = 14695981039346656037ULL;
  for (; *s; s++) {
    h ^= (unsigned char)*s;
    h *= 1099511628211ULL;
  }
  h ^= h >> 33;
  h *= 0xff51afd7ed558ccdULL;
  h ^= h >> 33;
  h *= 0xc4ceb9fe1a85ec53ULL;
  h ^= h >> 33;
  return h;
}

/* pg_ctl runs the server through /bin/sh with paths in double quotes: refuse what a shell would
 * expand there, and newlines (they would break postgresql.conf and our pgdata.path file). */
static int shell_safe(const char *s) {
  return strpbrk(s, "\"$`\\\n\r") == NULL;
}

/* Makes `in` absolute without creating anything: realpath of the longest existing prefix, then
 * the missing components appended (resolving "." and ".." lexically). */
static int absolutize(const char *in, char *out, size_t size) {
  char tmp[PATH_MAX];
  if (realpath(in, tmp)) {
    if (!fits(snprintf(out, size, "%s", tmp), size)) return -1;
    return 0;
  }
  if (errno != ENOENT) return -1;
  char copy1[PATH_MAX], copy2[PATH_MAX];
  if (!fits(snprintf(copy1, sizeof copy1, "%s", in), sizeof copy1)) return -1;
  memcpy(copy2, copy1, sizeof copy2);
  const char *parent = dirname(copy1);
  const char *base = basename(copy2);
  if (!strcmp(parent, in)) return -1; /* "/" or "." missing: nothing left to resolve */
  if (absolutize(parent, out, size)) return -1;
  size_t n = strlen(out);
  if (!strcmp(base, ".") || !strcmp(base, "/")) return 0;
  if (!strcmp(base, "..")) {
    char *slash = strrchr(out, '/');
    if (slash && slash != out)
      *slash = '\0';
    else
      out[1] = '\0';
    return 0;
  }
  const char *sep = (n > 0 && out[n - 1] == '/') ? "" : "/";
  return fits(snprintf(out + n, size - n, "%s%s", sep, base), size - n) ? 0 : -1;
}

/* mkdir -p with `mode` for the directories it creates. */
static int mkdir_p(const char *path, mode_t mode) {
  char p[PATH_MAX];
  if (!fits(snprintf(p, sizeof p, "%s", path), sizeof p)) return -1;
  for (char *s = p + 1;; s++) {
    if (*s == '/' || *s == '\0') {
      char c = *s;
      *s = '\0';
      if (mkdir(p, mode) != 0 && errno != EEXIST) return -1;
      *s = c;
      if (c == '\0') break;
    }
  }
  struct stat st;
  if (stat(path, &st) != 0) return -1;
  if (!S_ISDIR(st.st_mode)) {
    errno = ENOTDIR;
    return -1;
  }
  return 0;
}

static int who_resolve(runas *who, spine_err *e) {
  memset(who, 0, sizeof *who);
  if (geteuid() != 0) return 0;
  struct passwd *pw = getpwnam(PG_USER);
  if (!pw)
    return spine_err_set(e, SPINE_ENOTFOUND, "pgembed", NULL,
                         "running as root and there is no `" PG_USER "` system user to run "
                         "PostgreSQL as (install postgresql, or set SPINE_DATABASE_URL)");
  who->drop = 1;
  who->uid = pw->pw_uid;
  who->gid = pw->pw_gid;
  int n = MAX_GROUPS;
  if (getgrouplist(PG_USER, pw->pw_gid, who->groups, &n) < 0) {
    who->groups[0] = pw->pw_gid; /* more than MAX_GROUPS: keep the primary group only */
    n = 1;
  }
  who->ngroups = n;
  return 0;
}

/* In a forked child: become `who`. Only system calls here. */
static int child_become(const runas *who) {
  if (!who->drop) return 0;
  if (setgroups((size_t)who->ngroups, who->groups) != 0) return -1;
  if (setgid(who->gid) != 0) return -1;
  if (setuid(who->uid) != 0) return -1;
  return 0;
}

/* Can `who` reach `path` (execute permission on it, or on its deepest existing ancestor)? Tried
 * for real in a child with the user's identity, so ACLs and groups count. */
static int reachable(const runas *who, const char *path) {
  if (!who->drop) return 1;
  char p[PATH_MAX];
  if (!fits(snprintf(p, sizeof p, "%s", path), sizeof p)) return 0;
  while (!exists(p)) {
    char *slash = strrchr(p, '/');
    if (!slash || slash == p) break;
    *slash = '\0';
  }
  pid_t pid = fork();
  if (pid < 0) return 0;
  if (pid == 0) _exit(child_become(who) == 0 && access(p, X_OK) == 0 ? 0 : 1);
  int status;
  while (waitpid(pid, &status, 0) < 0)
    if (errno != EINTR) return 0;
  return WIFEXITED(status) && WEXITSTATUS(status) == 0;
}

/* Keeps the last TAIL_MAX bytes written to it. */
typedef struct tail {
  char buf[TAIL_MAX + 1];
  size_t len;
} tail;

static void tail_add(tail *t, const char *p, size_t n) {
  if (n >= TAIL_MAX) {
    memcpy(t->buf, p + n - TAIL_MAX, TAIL_MAX);
    t->len = TAIL_MAX;
  } else {
    size_t keep = t->len + n > TAIL_MAX ? TAIL_MAX - n : t->len;
    memmove(t->buf, t->buf + t->len - keep, keep);
    memcpy(t->buf + keep, p, n);
    t->len = keep + n;
  }
  t->buf[t->len] = '\0';
}

/* The tail as one line: newlines become "; ", surrounding blanks trimmed. Borrowed. */
static const char *tail_line(tail *t) {
  char out[TAIL_MAX * 2 + 1];
  size_t o = 0;
  for (size_t i = 0; i < t->len && o + 2 < sizeof out; i++) {
    char c = t->buf[i];
    if (c == '\n' || c == '\r') {
      if (o > 0 && out[o - 1] != ' ') {
        out[o++] = ';';
        out[o++] = ' ';
      }
    } else {
      out[o++] = c == '\t' ? ' ' : c;
    }
  }
  while (o > 0 && (out[o - 1] == ' ' || out[o - 1] == ';'))
    o--;
  out[o] = '\0';
  size_t start = o > TAIL_MAX ? o - TAIL_MAX : 0;
  memcpy(t->buf, out + start, o - start + 1);
  t->len = o - start;
  return t->buf;
}

/* The last bytes of a file (the server log). */
static void tail_file(tail *t, const char *path) {
  int fd = open(path, O_RDONLY | O_CLOEXEC);
  if (fd < 0) return;
  off_t end = lseek(fd, 0, SEEK_END);
  if (end > TAIL_MAX)
    lseek(fd, end - TAIL_MAX, SEEK_SET);
  else
    lseek(fd, 0, SEEK_SET);
  char b[TAIL_MAX];
  ssize_t n = read(fd, b, sizeof b);
  close(fd);
  if (n <= 0) return;
  const char *p = b;
  const char *nl = end > TAIL_MAX ? memchr(b, '\n', (size_t)n) : NULL;
  if (nl && nl + 1 < b + n) p = nl + 1; /* start at a whole line */
  tail_add(t, p, (size_t)(b + n - p));
}

/* Runs argv (argv[0] an absolute path) as `who` in "/", stdin from /dev/null, stdout and stderr
 * captured into `out`. Returns its exit status (0-255; 128+N if killed by signal N), or a
 * negative code with `e` filled when it could not be run. */
static int run(const runas *who, const char *const argv[], tail *out, spine_err *e) {
  out->len = 0;
  out->buf[0] = '\0';
  if (access(argv[0], X_OK) != 0)
    return spine_err_set(e, SPINE_ENOTFOUND, argv[0], NULL,
                         "cannot execute: %s (install postgresql 15, or set SPINE_PGBIN to the "
                         "directory holding initdb and pg_ctl)",
                         strerror(errno));
  int fds[2];
  if (pipe(fds) != 0)
    return spine_err_set(e, SPINE_EIO, argv[0], NULL, "pipe: %s", strerror(errno));
  fcntl(fds[0], F_SETFD, FD_CLOEXEC);
  fcntl(fds[1], F_SETFD, FD_CLOEXEC);
  static const char exec_failed[] = "spine: could not become the postgres user or exec\n";
  pid_t pid = fork();
  if (pid < 0) {
    int err = errno;
    close(fds[0]);
    close(fds[1]);
    return spine_err_set(e, SPINE_EIO, argv[0], NULL, "fork: %s", strerror(err));
  }
  if (pid == 0) {
    /* Only system calls from here to exec: the parent may have had other threads. */
    sigset_t all;
    sigemptyset(&all);
    sigprocmask(SIG_SETMASK, &all, NULL);
    signal(SIGPIPE, SIG_DFL);
    signal(SIGCHLD, SIG_DFL);
    signal(SIGINT, SIG_DFL);
    signal(SIGTERM, SIG_DFL);
    signal(SIGHUP, SIG_DFL);
    signal(SIGQUIT, SIG_DFL);
    int devnull = open("/dev/null", O_RDONLY);
    if (devnull >= 0) dup2(devnull, 0);
    dup2(fds[1], 1);
    dup2(fds[1], 2);
    /* Nothing else of ours may leak into the postmaster (a lock, a listening socket). */
    long maxfd = sysconf(_SC_OPEN_MAX);
    if (maxfd < 0 || maxfd > 65536) maxfd = 65536;
    for (int fd = 3; fd < (int)maxfd; fd++)
      close(fd);
    /* runuser-like tools keep the cwd, which the postgres user may not be able to read. */
    if (child_become(who) != 0 || chdir("/") != 0) {
      ssize_t w = write(2, exec_failed, sizeof exec_failed - 1);
      (void)w;
      _exit(126);
    }
    execv(argv[0], (char *const *)argv);
    ssize_t w = write(2, exec_failed, sizeof exec_failed - 1);
    (void)w;
    _exit(127);
  }
  close(fds[1]);
  char b[512];
  for (;;) {
    ssize_t n = read(fds[0], b, sizeof b);
    if (n > 0)
      tail_add(out, b, (size_t)n);
    else if (n == 0 || errno != EINTR)
      break;
  }
  close(fds[0]);
  int status;
  while (waitpid(pid, &status, 0) < 0) {
    if (errno != EINTR)
      return spine_err_set(e, SPINE_EIO, argv[0], NULL, "waitpid: %s", strerror(errno));
  }
  if (WIFEXITED(status)) return WEXITSTATUS(status);
  return 128 + (WIFSIGNALED(status) ? WTERMSIG(status) : 0);
}

static const char *pgbin(void) {
  const char *b = getenv("SPINE_PGBIN");
  return b && *b ? b : DEFAULT_PGBIN;
}

static int bin_path(char *out, size_t size, const char *name, spine_err *e) {
  if (!fits(snprintf(out, size, "%s/%s", pgbin(), name), size))
    return spine_err_set(e, SPINE_EINVAL, "SPINE_PGBIN", NULL, "path too long");
  return 0;
}

/* A directory we (or the postgres user) own, not a symlink, with `mode`: the socket directory
 * sits in world-writable /tmp, so someone else may have made it first. */
static int ensure_private_dir(const runas *who, const char *dir, mode_t mode, spine_err *e) {
  uid_t owner = who->drop ? who->uid : geteuid();
  if (mkdir(dir, mode) == 0) {
    if (who->drop && chown(dir, who->uid, who->gid) != 0)
      return spine_err_set(e, SPINE_EIO, dir, NULL, "chown to " PG_USER ": %s", strerror(errno));
  } else if (errno != EEXIST) {
    return spine_err_set(e, SPINE_EIO, dir, NULL, "cannot create directory: %s", strerror(errno));
  }
  struct stat st;
  if (lstat(dir, &st) != 0)
    return spine_err_set(e, SPINE_EIO, dir, NULL, "stat: %s", strerror(errno));
  if (!S_ISDIR(st.st_mode))
    return spine_err_set(e, SPINE_EIO, dir, NULL, "not a directory (remove it)");
  if (st.st_uid != owner)
    return spine_err_set(e, SPINE_EIO, dir, NULL,
                         "owned by uid %ld, expected uid %ld (remove it or pick another "
                         "SPINE_HOME)",
                         (long)st.st_uid, (long)owner);
  if ((st.st_mode & 07777) != mode && chmod(dir, mode) != 0)
    return spine_err_set(e, SPINE_EIO, dir, NULL, "chmod: %s", strerror(errno));
  return 0;
}

/* ---- paths ---- */

/* $SPINE_HOME/pgdata.path: where the data directory went when it could not live in the home
 * (the postgres user cannot reach the home). Empty `out` when absent. */
static int read_datadir_file(const char *home, char *out, size_t size, spine_err *e) {
  char p[1300];
  out[0] = '\0';
  if (!fits(snprintf(p, sizeof p, "%s/pgdata.path", home), sizeof p)) return 0;
  FILE *f = fopen(p, "re");
  if (!f) return 0;
  char line[1300];
  int ok = fgets(line, sizeof line, f) != NULL;
  fclose(f);
  line[ok ? strcspn(line, "\r\n") : 0] = '\0';
  if (line[0] != '/' || !shell_safe(line) || !fits(snprintf(out, size, "%s", line), size))
    return spine_err_set(e, SPINE_EINVAL, p, NULL,
                         "expected one absolute data directory path (delete the file if the "
                         "cluster is gone)");
  return 0;
}

static int write_datadir_file(const char *home, const char *datadir, spine_err *e) {
  char p[1300], tmp[1310];
  if (!fits(snprintf(p, sizeof p, "%s/pgdata.path", home), sizeof p) ||
      !fits(snprintf(tmp, sizeof tmp, "%s.tmp", p), sizeof tmp))
    return spine_err_set(e, SPINE_EINVAL, home, NULL, "path too long");
  FILE *f = fopen(tmp, "we");
  if (!f) return spine_err_set(e, SPINE_EIO, tmp, NULL, "cannot write: %s", strerror(errno));
  int bad = fprintf(f, "%s\n", datadir) < 0;
  bad |= fflush(f) != 0 || fsync(fileno(f)) != 0;
  bad |= fclose(f) != 0;
  if (bad || rename(tmp, p) != 0) {
    unlink(tmp);
    return spine_err_set(e, SPINE_EIO, p, NULL, "cannot write: %s", strerror(errno));
  }
  return 0;
}

/* Fills every path of `pg` for the absolute home `home`. Reads the disk, writes nothing. */
static int fill(spine_pgembed *pg, const char *home, const runas *who, spine_err *e) {
  if (!fits(snprintf(pg->home, sizeof pg->home, "%s", home), sizeof pg->home))
    return spine_err_set(e, SPINE_EINVAL, "SPINE_HOME", NULL, "path too long (at most %zu bytes)",
                         sizeof pg->home - 1);
  if (!shell_safe(pg->home))
    return spine_err_set(e, SPINE_EINVAL, "SPINE_HOME", NULL,
                         "\"%s\": must not contain quotes, $, `, \\ or newlines", pg->home);
  uint64_t h = path_hash(pg->home);
  snprintf(pg->sockdir, sizeof pg->sockdir, "/tmp/spine-%012llx", (unsigned long long)(h >> 16));
  snprintf(pg->conninfo, sizeof pg->conninfo,
           "host=%s port=" PG_PORT " user=" PG_ROLE " dbname=spine", pg->sockdir);
  snprintf(pg->admin_conninfo, sizeof pg->admin_conninfo,
           "host=%s port=" PG_PORT " user=" PG_ADMIN " dbname=postgres", pg->sockdir);

  int rc = read_datadir_file(pg->home, pg->datadir, sizeof pg->datadir, e);
  if (rc) return rc;
  /* A path to nothing (/tmp wiped, or initdb failed there): decide afresh. */
  if (pg->datadir[0] && !initialized(pg->datadir)) pg->datadir[0] = '\0';
  if (!pg->datadir[0]) {
    char inside[1200];
    if (!fits(snprintf(inside, sizeof inside, "%s/pgdata", pg->home), sizeof inside))
      return spine_err_set(e, SPINE_EINVAL, "SPINE_HOME", NULL, "path too long");
    /* As root the server runs as `postgres`, which may not reach the home (say a clone inside
     * a mode 0700 `mktemp -d`): then the data goes beside the socket, in a directory it owns. */
    if (exists(inside) || reachable(who, pg->home))
      snprintf(pg->datadir, sizeof pg->datadir, "%s", inside);
    else
      snprintf(pg->datadir, sizeof pg->datadir, "%s/pgdata", pg->sockdir);
  }
  /* The log sits beside the data directory: the one place the server's user surely reaches. */
  char dir[1200];
  snprintf(dir, sizeof dir, "%s", pg->datadir);
  if (!fits(snprintf(pg->logfile, sizeof pg->logfile, "%s/postgres.log", dirname(dir)),
            sizeof pg->logfile))
    return spine_err_set(e, SPINE_EINVAL, "SPINE_HOME", NULL, "path too long");
  return 0;
}

static int home_path(char *out, size_t size, spine_err *e) {
  const char *env = getenv("SPINE_HOME");
  const char *home = env && *env ? env : "./.spine";
  if (absolutize(home, out, size) != 0)
    return spine_err_set(e, SPINE_EINVAL, "SPINE_HOME", NULL, "cannot resolve \"%s\": %s", home,
                         strerror(errno));
  return 0;
}

int spine_pgembed_init(spine_pgembed *pg, spine_err *e) {
  memset(pg, 0, sizeof *pg);
  char home[PATH_MAX];
  int rc = home_path(home, sizeof home, e);
  if (rc) return rc;
  runas who;
  spine_err ignored;
  if (who_resolve(&who, &ignored)) who.drop = 0; /* start reports a missing user */
  return fill(pg, home, &who, e);
}

/* ---- the cluster ---- */

/* Takes $SPINE_HOME/.lock (exclusive, blocking); returns the fd to close, or a negative code. */
static int lock_home(const spine_pgembed *pg, spine_err *e) {
  char p[1100];
  if (!fits(snprintf(p, sizeof p, "%s/.lock", pg->home), sizeof p))
    return spine_err_set(e, SPINE_EINVAL, "SPINE_HOME", NULL, "path too long");
  /* O_CLOEXEC: a lock inherited by the postmaster would be held for as long as it runs. */
  int fd = open(p, O_RDWR | O_CREAT | O_CLOEXEC, 0644);
  if (fd < 0) return spine_err_set(e, SPINE_EIO, p, NULL, "cannot open: %s", strerror(errno));
  while (flock(fd, LOCK_EX) != 0) {
    if (errno != EINTR) {
      int err = errno;
      close(fd);
      return spine_err_set(e, SPINE_EIO, p, NULL, "flock: %s", strerror(err));
    }
  }
  return fd;
}

/* pg_ctl status: 1 running, 0 not running or no cluster, negative on error. */
static int status(const spine_pgembed *pg, const runas *who, spine_err *e) {
  if (!initialized(pg->datadir)) return 0;
  char bin[1100];
  int rc = bin_path(bin, sizeof bin, "pg_ctl", e);
  if (rc) return rc;
  const char *argv[] = {bin, "status", "-D", pg->datadir, NULL};
  tail out;
  rc = run(who, argv, &out, e);
  if (rc < 0) return rc;
  if (rc == 0) return 1;
  if (rc == 3 || rc == 4) return 0;
  return spine_err_set(e, SPINE_EIO, "pg_ctl status", NULL, "exit status %d: %s", rc,
                       tail_line(&out));
}

static int initdb(const spine_pgembed *pg, const runas *who, const char *locale, tail *out,
                  spine_err *e) {
  char bin[1100], loc[64];
  int rc = bin_path(bin, sizeof bin, "initdb", e);
  if (rc) return rc;
  snprintf(loc, sizeof loc, "--locale=%s", locale);
  /* No -N: initdb's final fsync costs ~0.1 s once, and without it a crash soon after creation
   * could leave a cluster whose catalog files never reached the disk. */
  /* Peer until write_auth() narrows it to the user who runs Spine, before the first start. */
  const char *argv[] = {
      bin,  "-D",   pg->datadir, "-U", PG_ADMIN, "--auth-local=peer", "--auth-host=reject",
      "-E", "UTF8", loc,         NULL};
  return run(who, argv, out, e);
}

/* Settings appended to postgresql.conf at creation. fsync and synchronous_commit stay on:
 * durability is the point. */
static const char conf_extra[] =
    "\n# Added by Spine (runtime/store/pgembed.c) when it created this "
    "cluster.\n"
    "listen_addresses = ''\n"
    "unix_socket_permissions = 0700\n"
    "max_connections = 200\n"
    "shared_buffers = 128MB\n";

static int append_conf(const spine_pgembed *pg, spine_err *e) {
  char p[1300];
  if (!fits(snprintf(p, sizeof p, "%s/postgresql.conf", pg->datadir), sizeof p))
    return spine_err_set(e, SPINE_EINVAL, pg->datadir, NULL, "path too long");
  FILE *f = fopen(p, "ae");
  if (!f) return spine_err_set(e, SPINE_EIO, p, NULL, "cannot open: %s", strerror(errno));
  int bad = fputs(conf_extra, f) < 0;
  bad |= fclose(f) != 0;
  if (bad) return spine_err_set(e, SPINE_EIO, p, NULL, "cannot write: %s", strerror(errno));
  return 0;
}

/* Makes the data directory (owned by the server's user) and runs initdb in it. */
static int create(const spine_pgembed *pg, const runas *who, spine_err *e) {
  char sockpgdata[300];
  snprintf(sockpgdata, sizeof sockpgdata, "%s/pgdata", pg->sockdir);
  int beside_socket = !strcmp(pg->datadir, sockpgdata);
  if (beside_socket) {
    int rc = ensure_private_dir(who, pg->sockdir, 0700, e);
    if (!rc) rc = write_datadir_file(pg->home, pg->datadir, e);
    if (rc) return rc;
  }
  if (mkdir(pg->datadir, 0700) != 0 && errno != EEXIST)
    return spine_err_set(e, SPINE_EIO, pg->datadir, NULL, "cannot create directory: %s",
                         strerror(errno));
  if (who->drop && chown(pg->datadir, who->uid, who->gid) != 0)
    return spine_err_set(e, SPINE_EIO, pg->datadir, NULL, "chown to " PG_USER ": %s",
                         strerror(errno));
  if (chmod(pg->datadir, 0700) != 0)
    return spine_err_set(e, SPINE_EIO, pg->datadir, NULL, "chmod: %s", strerror(errno));
  tail out;
  int rc = initdb(pg, who, "C.UTF-8", &out, e);
  if (rc > 0) rc = initdb(pg, who, "C", &out, e); /* a system without the C.UTF-8 locale */
  if (rc < 0) return rc;
  if (rc > 0)
    return spine_err_set(e, SPINE_EIO, "initdb", NULL, "exit status %d: %s", rc, tail_line(&out));
  return append_conf(pg, e);
}

/* The server log, made by us and given to the server's user: pg_ctl appends to it as that user,
 * who may not be allowed to create files in the home. */
static int ensure_logfile(const spine_pgembed *pg, const runas *who, spine_err *e) {
  int fd = open(pg->logfile, O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0600);
  if (fd < 0)
    return spine_err_set(e, SPINE_EIO, pg->logfile, NULL, "cannot open: %s", strerror(errno));
  /* 0600: the log quotes failed statements, and with them the data they carried. */
  int bad = fchmod(fd, 0600) != 0 || (who->drop && fchown(fd, who->uid, who->gid) != 0);
  int err = errno;
  close(fd);
  if (bad)
    return spine_err_set(e, SPINE_EIO, pg->logfile, NULL, "chown to " PG_USER ": %s",
                         strerror(err));
  return 0;
}

static int start_server(const spine_pgembed *pg, const runas *who, spine_err *e) {
  int rc = ensure_private_dir(who, pg->sockdir, 0700, e);
  if (!rc) rc = ensure_logfile(pg, who, e);
  char bin[1100], opts[400];
  if (!rc) rc = bin_path(bin, sizeof bin, "pg_ctl", e);
  if (rc) return rc;
  /* The socket file is private to our directory, so the port number can be fixed. */
  snprintf(opts, sizeof opts,
           "-c listen_addresses='' -c unix_socket_permissions=0700 -k %s -p " PG_PORT, pg->sockdir);
  const char *argv[] = {bin,  "start", "-D", pg->datadir, "-l", pg->logfile, "-w",
                        "-t", "60",    "-s", "-o",        opts, NULL};
  tail out;
  rc = run(who, argv, &out, e);
  if (rc < 0) return rc;
  if (rc > 0) {
    /* pg_ctl only says "examine the log output": the reason is at the end of the log. */
    tail log = {{0}, 0};
    tail_file(&log, pg->logfile);
    const char *why = log.len ? tail_line(&log) : tail_line(&out);
    return spine_err_set(e, SPINE_EIO, pg->logfile, NULL, "pg_ctl start failed (exit %d): %s", rc,
                         why);
  }
  return 0;
}

static spine_pgembed_owner owner_of(const runas *who) {
  spine_pgembed_owner o = {who->drop, who->uid, who->gid};
  return o;
}

/* pg_ctl reload: a running server reads its new authentication rules. */
static int reload(const spine_pgembed *pg, const runas *who, spine_err *e) {
  char bin[1100];
  int rc = bin_path(bin, sizeof bin, "pg_ctl", e);
  if (rc) return rc;
  const char *argv[] = {bin, "reload", "-D", pg->datadir, "-s", NULL};
  tail out;
  rc = run(who, argv, &out, e);
  if (rc > 0)
    return spine_err_set(e, SPINE_EIO, "pg_ctl reload", NULL, "exit status %d: %s", rc,
                         tail_line(&out));
  return rc;
}

int spine_pgembed_start(spine_pgembed *pg, spine_err *e) {
  runas who;
  int rc = who_resolve(&who, e);
  if (rc) return rc;
  if (mkdir_p(pg->home, 0755) != 0)
    return spine_err_set(e, SPINE_EIO, pg->home, NULL, "cannot create SPINE_HOME: %s",
                         strerror(errno));
  /* Again, now that the home exists: its realpath and reachability are final. */
  char home[PATH_MAX];
  if (!realpath(pg->home, home))
    return spine_err_set(e, SPINE_EIO, pg->home, NULL, "realpath: %s", strerror(errno));
  rc = fill(pg, home, &who, e);
  if (rc) return rc;
  int lock = lock_home(pg, e);
  if (lock < 0) return lock;
  /* Under the lock, paths may have changed (another process made the cluster meanwhile). */
  rc = fill(pg, home, &who, e);
  if (!rc && !initialized(pg->datadir)) rc = create(pg, &who, e);
  /* Before every start, and for a server already running: a cluster made by an older Spine
   * trusted every local user. */
  char os_user[64];
  spine_pgembed_owner o = owner_of(&who);
  int changed = 0;
  if (!rc) rc = spine_pgembed__os_user(os_user, sizeof os_user, e);
  if (!rc) rc = changed = spine_pgembed__write_auth(pg->datadir, os_user, &o, e);
  if (rc > 0) rc = 0;
  if (!rc) {
    rc = status(pg, &who, e);
    if (rc == 0)
      rc = start_server(pg, &who, e);
    else if (rc == 1 && changed)
      rc = reload(pg, &who, e);
    if (rc > 0) rc = 0;
  }
  /* The directory again: one made before it was 0700 is narrowed while the server runs. */
  if (!rc) rc = ensure_private_dir(&who, pg->sockdir, 0700, e);
  if (!rc) rc = spine_pgembed__provision(pg->sockdir, e);
  close(lock);
  return rc;
}

int spine_pgembed_stop(spine_pgembed *pg, spine_err *e) {
  if (!initialized(pg->datadir)) return 0;
  runas who;
  int rc = who_resolve(&who, e);
  if (rc) return rc;
  int lock = lock_home(pg, e);
  if (lock < 0) return lock;
  rc = status(pg, &who, e);
  if (rc == 1) {
    char bin[1100];
    rc = bin_path(bin, sizeof bin, "pg_ctl", e);
    if (!rc) {
      const char *argv[] = {bin,  "stop", "-D", pg->datadir, "-m", "fast",
                            "-w", "-t",   "60", "-s",        NULL};
      tail out;
      rc = run(&who, argv, &out, e);
      if (rc > 0)
        rc = spine_err_set(e, SPINE_EIO, "pg_ctl stop", NULL, "exit status %d: %s", rc,
                           tail_line(&out));
    }
  }
  close(lock);
  return rc < 0 ? rc : 0;
}

int spine_pgembed_running(spine_pgembed *pg) {
  if (!initialized(pg->datadir)) return 0;
  runas who;
  int rc = who_resolve(&who, NULL);
  if (rc) return rc;
  return status(pg, &who, NULL);
}
