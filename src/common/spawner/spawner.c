/*
 * silo-spawner: runs host tools (runc, ip, nft, mount, ...) for the daemon, so the daemon never forks its own large
 * address space per tool: each fork copies the page tables of ~100 MB and blocks its event loop for milliseconds.
 * This process is small; it starts children with posix_spawn (vfork in glibc) and reports how they ended.
 *
 * Protocol on stdin/stdout, little-endian u32 lengths:
 *   request:  u32 len, then len bytes: u32 id, u32 timeout_ms (0: none), u32 argc, u32 envc, u32 input_len, u32 flags,
 *             then NUL-terminated strings: file, cwd ("" for the daemon's), argv[argc], env[envc]; then input bytes.
 *   answer:   u32 len, then: u32 id, i32 code (exit status, or -1 when it could not start), i32 signal, i32 errno,
 *             u32 out_len, u32 err_len, u32 sync_len, then stdout, stderr and sync bytes.
 * Flag MONITOR starts a monitor that daemonizes (conmon): stdin and stdout /dev/null, a new session, and fd 3 a pipe
 * (its sync pipe) whose first line is the answer's sync bytes. The monitor's grandchild keeps its stdio, so the answer
 * comes once the child exited and that line arrived (our end of the pipe is closed then, as the daemon closed its own
 * after the first message); without a line, at the pipe's EOF once stderr ended too, or 2 s after that EOF.
 * Flag BUILTIN runs `mount` or `umount` in a fork of this process instead of exec'ing mount(8) or umount(8): their
 * start (the dynamic loader, libmount, a read of mountinfo) is ~4 ms of CPU each, three per container, for one system
 * call. Only the forms Silo uses are built in (see builtin()); any other arguments exit 125 with no output, and the caller
 * runs the tool itself.
 * When stdin ends (the daemon went away, or closed it) the children still running are let finish, as they would have
 * been had the daemon forked them itself; then the spawner exits.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <spawn.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>
#include <linux/loop.h>
#include <sys/ioctl.h>
#include <sys/mount.h>

struct buf { char *p; size_t len, cap; };

static void put(struct buf *b, const void *d, size_t n) {
  if (b->len + n > b->cap) {
    size_t c = b->cap ? b->cap : 4096;
    while (c < b->len + n) c *= 2;
    b->p = realloc(b->p, c);
    if (!b->p) abort();
    b->cap = c;
  }
  memcpy(b->p + b->len, d, n);
  b->len += n;
}

#define MONITOR 1u
#define BUILTIN 2u

struct job {
  uint32_t id;
  pid_t pid;
  int in, out, err, sync; /* our ends, -1 once closed */
  char *input; size_t input_len, input_off;
  struct buf o, e, s;
  int monitor;
  int has_line;          /* MONITOR: the sync pipe gave a whole line */
  long long sync_eof_at; /* MONITOR: when the sync pipe ended without one (ms), 0: not yet */
  int exited, status;
  long long deadline; /* ms, 0: none */
  struct job *next;
};

static struct job *jobs;
static struct buf reply; /* answers not yet written to stdout */
static int sigpipe[2];

static long long now_ms(void) {
  struct timespec t;
  clock_gettime(CLOCK_MONOTONIC, &t);
  return (long long)t.tv_sec * 1000 + t.tv_nsec / 1000000;
}

static void on_chld(int s) {
  (void)s;
  int e = errno;
  if (write(sigpipe[1], "c", 1) < 0) { /* full: a wakeup is pending anyway */ }
  errno = e;
}

static void u32(struct buf *b, uint32_t v) { put(b, &v, 4); }

static void answer(uint32_t id, int32_t code, int32_t sig, int32_t err, struct buf *o, struct buf *e, struct buf *s) {
  uint32_t ol = o ? o->len : 0, el = e ? e->len : 0, sl = s ? s->len : 0;
  u32(&reply, 28 + ol + el + sl);
  u32(&reply, id);
  u32(&reply, (uint32_t)code);
  u32(&reply, (uint32_t)sig);
  u32(&reply, (uint32_t)err);
  u32(&reply, ol);
  u32(&reply, el);
  u32(&reply, sl);
  if (ol) put(&reply, o->p, ol);
  if (el) put(&reply, e->p, el);
  if (sl) put(&reply, s->p, sl);
}

/* --- builtins: mount and umount, run in a forked child (stdio its job's pipes) --- */

#define NOT_MINE 125

/* mount(8)'s generic options as mount(2) flags; every other option is the file system's (its data string). */
static const struct { const char *name; unsigned long set, clear; } generic[] = {
  { "ro", MS_RDONLY, 0 },       { "rw", 0, MS_RDONLY },         { "nosuid", MS_NOSUID, 0 },   { "suid", 0, MS_NOSUID },
  { "nodev", MS_NODEV, 0 },     { "dev", 0, MS_NODEV },         { "noexec", MS_NOEXEC, 0 },   { "exec", 0, MS_NOEXEC },
  { "noatime", MS_NOATIME, 0 }, { "relatime", MS_RELATIME, 0 }, { "sync", MS_SYNCHRONOUS, 0 }, { "dirsync", MS_DIRSYNC, 0 },
};

/*
 * A loop device for `file` with autoclear (it goes when its last user, the mount, does), as `mount -o loop` attaches
 * one; its open descriptor, or -1 with errno.
 */
static int attach_loop(const char *file, int ro, char *dev, size_t devlen) {
  int ffd = open(file, (ro ? O_RDONLY : O_RDWR) | O_CLOEXEC);
  if (ffd < 0) return -1;
  int ctl = open("/dev/loop-control", O_RDWR | O_CLOEXEC), lfd = -1, e = 0;
  for (int tries = 0; ctl >= 0 && tries < 32; tries++) {
    int n = ioctl(ctl, LOOP_CTL_GET_FREE);
    if (n < 0) { e = errno; break; }
    snprintf(dev, devlen, "/dev/loop%d", n);
    lfd = open(dev, (ro ? O_RDONLY : O_RDWR) | O_CLOEXEC);
    if (lfd < 0) { e = errno; break; }
    struct loop_config c;
    memset(&c, 0, sizeof c);
    c.fd = (uint32_t)ffd;
    c.info.lo_flags = LO_FLAGS_AUTOCLEAR | (ro ? LO_FLAGS_READ_ONLY : 0);
    snprintf((char *)c.info.lo_file_name, sizeof c.info.lo_file_name, "%s", file);
    if (ioctl(lfd, LOOP_CONFIGURE, &c) == 0) break;
    e = errno;
    close(lfd);
    lfd = -1;
    if (e != EBUSY) break; /* EBUSY: another process took that device first */
  }
  if (ctl < 0) e = errno;
  else close(ctl);
  close(ffd);
  errno = e;
  return lfd;
}

/* Options mount(8) acts on itself (binds, propagation, remounts, loop settings, fstab's): left to mount(8). */
static int userspace(const char *o) {
  static const char *const exact[] = { "defaults", "remount", "bind", "rbind", "move", "shared", "rshared", "private",
    "rprivate", "slave", "rslave", "unbindable", "runbindable", "user", "users", "nouser", "owner", "group", "auto",
    "noauto", "nofail", "_netdev" };
  static const char *const prefix[] = { "x-", "loop=", "offset=", "sizelimit=", "encryption=", "comment=", "uhelper=",
    "helper=", "make-" };
  for (size_t i = 0; i < sizeof exact / sizeof exact[0]; i++) if (!strcmp(o, exact[i])) return 1;
  for (size_t i = 0; i < sizeof prefix / sizeof prefix[0]; i++) if (!strncmp(o, prefix[i], strlen(prefix[i]))) return 1;
  return 0;
}

/*
 * mount -t TYPE [-o OPTIONS] SOURCE TARGET, with `loop` among the options for a file; as for mount(8), -t and -o may
 * come before, between or after the two paths.
 */
static int builtin_mount(int argc, char **argv) {
  const char *type = NULL, *options = "", *source = NULL, *target = NULL;
  for (int i = 1; i < argc; i++) {
    if (argv[i][0] == '-') {
      if (i + 1 == argc) return NOT_MINE;
      if (!strcmp(argv[i], "-t")) type = argv[++i];
      else if (!strcmp(argv[i], "-o")) options = argv[++i];
      else return NOT_MINE;
    } else if (!source) source = argv[i];
    else if (!target) target = argv[i];
    else return NOT_MINE;
  }
  if (!type || !target || !strcmp(type, "auto")) return NOT_MINE;
  /* A type with a helper (mount.nfs, mount.fuse...) is mount(8)'s to run. */
  char helper[128];
  snprintf(helper, sizeof helper, "/sbin/mount.%s", type);
  if (strchr(type, '/') || access(helper, X_OK) == 0) return NOT_MINE;
  snprintf(helper, sizeof helper, "/usr/sbin/mount.%s", type);
  if (access(helper, X_OK) == 0) return NOT_MINE;
  unsigned long flags = 0;
  int loop = 0;
  size_t n = strlen(options);
  char *data = calloc(1, n + 1), *opts = strdup(options), *save = NULL;
  if (!data || !opts) return NOT_MINE;
  for (char *o = strtok_r(opts, ",", &save); o; o = strtok_r(NULL, ",", &save)) {
    size_t g = 0;
    for (; g < sizeof generic / sizeof generic[0]; g++)
      if (!strcmp(o, generic[g].name)) { flags = (flags | generic[g].set) & ~generic[g].clear; break; }
    if (g < sizeof generic / sizeof generic[0]) continue;
    if (!strcmp(o, "loop")) { loop = 1; continue; }
    if (userspace(o)) return NOT_MINE;
    if (*data) strcat(data, ",");
    strcat(data, o);
  }
  char dev[64];
  int lfd = -1;
  if (loop) {
    lfd = attach_loop(source, (flags & MS_RDONLY) != 0, dev, sizeof dev);
    if (lfd < 0) { fprintf(stderr, "mount: %s: failed to set up a loop device: %s\n", target, strerror(errno)); return 32; }
    source = dev;
  }
  int rc = mount(source, target, type, flags, *data ? data : NULL);
  int e = errno;
  if (lfd >= 0) close(lfd); /* the mount holds the device now; after a failure, autoclear detaches it here */
  if (rc) { fprintf(stderr, "mount: %s: %s\n", target, strerror(e)); return 32; }
  return 0;
}

/* umount [-l] PATH...: each in turn, as umount(8) takes several. */
static int builtin_umount(int argc, char **argv) {
  int i = 1, flags = 0, rc = 0;
  if (i < argc && !strcmp(argv[i], "-l")) { flags = MNT_DETACH; i++; }
  if (i == argc) return NOT_MINE;
  for (int k = i; k < argc; k++) if (argv[k][0] != '/') return NOT_MINE;
  for (; i < argc; i++) {
    if (umount2(argv[i], flags)) {
      fprintf(stderr, "umount: %s: %s\n", argv[i], errno == EINVAL ? "not mounted" : strerror(errno));
      rc = 32;
    }
  }
  return rc;
}

static int builtin(const char *name, int argc, char **argv) {
  if (!strcmp(name, "mount")) return builtin_mount(argc, argv);
  if (!strcmp(name, "umount")) return builtin_umount(argc, argv);
  return NOT_MINE;
}

static void nonblock(int fd) { fcntl(fd, F_SETFL, fcntl(fd, F_GETFL) | O_NONBLOCK); }

static void start(const char *req, uint32_t len) {
  uint32_t h[6];
  if (len < sizeof h) return;
  memcpy(h, req, sizeof h);
  uint32_t id = h[0], timeout = h[1], argc = h[2], envc = h[3], input_len = h[4], flags = h[5];
  int monitor = (flags & MONITOR) != 0;
  const char *p = req + sizeof h, *end = req + len - input_len;
  if (input_len > len - sizeof h) return;
  uint32_t nstr = 2 + argc + envc;
  char **strs = calloc(nstr + 2, sizeof(char *));
  for (uint32_t i = 0; i < nstr; i++) {
    const char *z = memchr(p, 0, (size_t)(end - p));
    if (!z) { free(strs); answer(id, -1, 0, EINVAL, NULL, NULL, NULL); return; }
    strs[i] = (char *)p;
    p = z + 1;
  }
  char *file = strs[0], *cwd = strs[1];
  char **argv = calloc(argc + 1, sizeof(char *)), **envp = calloc(envc + 1, sizeof(char *));
  for (uint32_t i = 0; i < argc; i++) argv[i] = strs[2 + i];
  for (uint32_t i = 0; i < envc; i++) envp[i] = strs[2 + argc + i];

  int pin[2], pout[2], perr[2], psync[2] = { -1, -1 };
  if (pipe2(pin, O_CLOEXEC) || pipe2(pout, O_CLOEXEC) || pipe2(perr, O_CLOEXEC) || (monitor && pipe2(psync, O_CLOEXEC))) {
    answer(id, -1, 0, errno, NULL, NULL, NULL);
    goto out;
  }
  posix_spawn_file_actions_t fa;
  posix_spawn_file_actions_init(&fa);
  if (monitor) {
    posix_spawn_file_actions_addopen(&fa, 0, "/dev/null", O_RDONLY, 0);
    posix_spawn_file_actions_addopen(&fa, 1, "/dev/null", O_WRONLY, 0);
    posix_spawn_file_actions_adddup2(&fa, psync[1], 3);
  } else {
    posix_spawn_file_actions_adddup2(&fa, pin[0], 0);
    posix_spawn_file_actions_adddup2(&fa, pout[1], 1);
  }
  posix_spawn_file_actions_adddup2(&fa, perr[1], 2);
  if (*cwd) posix_spawn_file_actions_addchdir_np(&fa, cwd);
  posix_spawnattr_t at;
  posix_spawnattr_init(&at);
  sigset_t none, all;
  sigemptyset(&none);
  sigfillset(&all);
  posix_spawnattr_setsigmask(&at, &none);
  posix_spawnattr_setsigdefault(&at, &all);
  posix_spawnattr_setflags(&at, POSIX_SPAWN_SETSIGMASK | POSIX_SPAWN_SETSIGDEF | (monitor ? POSIX_SPAWN_SETSID : 0));
  pid_t pid;
  int rc = 0;
  if ((flags & BUILTIN) && !monitor) {
    /* The child has this process's descriptors (other jobs' pipes among them): its stdio first, then none beside. */
    pid = fork();
    if (pid == 0) {
      signal(SIGCHLD, SIG_DFL);
      signal(SIGPIPE, SIG_DFL);
      dup2(pin[0], 0);
      dup2(pout[1], 1);
      dup2(perr[1], 2);
      close_range(3, ~0u, 0);
      if (*cwd && chdir(cwd)) { fprintf(stderr, "%s: %s: %s\n", file, cwd, strerror(errno)); _exit(1); }
      _exit(builtin(file, (int)argc, argv));
    }
    if (pid < 0) rc = errno;
  } else {
    rc = posix_spawn(&pid, file, &fa, &at, argv, envp);
  }
  posix_spawn_file_actions_destroy(&fa);
  posix_spawnattr_destroy(&at);
  close(pin[0]);
  close(pout[1]);
  close(perr[1]);
  if (monitor) {
    close(psync[1]);
    /* Nothing is read from stdout (it is /dev/null): our end is at EOF at once. */
    close(pout[0]);
    pout[0] = -1;
  }
  if (rc) {
    close(pin[1]);
    if (pout[0] >= 0) close(pout[0]);
    close(perr[0]);
    if (monitor) close(psync[0]);
    answer(id, -1, 0, rc, NULL, NULL, NULL);
    goto out;
  }
  struct job *j = calloc(1, sizeof *j);
  j->id = id;
  j->pid = pid;
  j->in = pin[1];
  j->out = pout[0];
  j->err = perr[0];
  j->sync = psync[0];
  j->monitor = monitor;
  nonblock(j->in);
  if (j->out >= 0) nonblock(j->out);
  nonblock(j->err);
  if (j->sync >= 0) nonblock(j->sync);
  j->input_len = input_len;
  if (input_len) {
    j->input = malloc(input_len);
    memcpy(j->input, end, input_len);
  } else {
    close(j->in);
    j->in = -1;
  }
  j->deadline = timeout ? now_ms() + timeout : 0;
  j->next = jobs;
  jobs = j;
out:
  free(strs);
  free(argv);
  free(envp);
}

static void drain(int *fd, struct buf *b) {
  char tmp[65536];
  for (;;) {
    ssize_t n = read(*fd, tmp, sizeof tmp);
    if (n > 0) { put(b, tmp, (size_t)n); continue; }
    if (n < 0 && (errno == EAGAIN || errno == EINTR)) return;
    close(*fd);
    *fd = -1;
    return;
  }
}

/* The sync pipe up to its first line; closed then (nothing later on it is the daemon's). */
static void drain_sync(struct job *j) {
  drain(&j->sync, &j->s);
  char *nl = j->s.len ? memchr(j->s.p, '\n', j->s.len) : NULL;
  if (nl) {
    j->s.len = (size_t)(nl - j->s.p) + 1;
    j->has_line = 1;
    if (j->sync >= 0) { close(j->sync); j->sync = -1; }
  } else if (j->sync < 0 && !j->sync_eof_at) {
    j->sync_eof_at = now_ms();
  }
}

/* Whether the job's answer can be sent: see the protocol above for a MONITOR's. */
static int finished(struct job *j, long long t) {
  if (!j->exited) return 0;
  if (!j->monitor) return j->out < 0 && j->err < 0;
  if (j->has_line) return 1;
  if (j->sync >= 0) return 0;
  return (j->out < 0 && j->err < 0) || t - j->sync_eof_at >= 2000;
}

static void reap(void) {
  for (;;) {
    int st;
    pid_t pid = waitpid(-1, &st, WNOHANG);
    if (pid <= 0) return;
    for (struct job *j = jobs; j; j = j->next)
      if (j->pid == pid) { j->exited = 1; j->status = st; }
  }
}

int main(void) {
  if (pipe2(sigpipe, O_CLOEXEC | O_NONBLOCK)) return 1;
  struct sigaction sa = { 0 };
  sa.sa_handler = on_chld;
  sa.sa_flags = SA_RESTART | SA_NOCLDSTOP;
  sigaction(SIGCHLD, &sa, NULL);
  signal(SIGPIPE, SIG_IGN);
  nonblock(1);
  struct buf in = { 0 };
  int in_open = 1;
  for (;;) {
    /* Finished jobs: both pipes at EOF and the process reaped (a monitor's: see the protocol above). */
    long long t = now_ms(), wait = -1;
    for (struct job **pj = &jobs; *pj;) {
      struct job *j = *pj;
      if (finished(j, t)) {
        int code = WIFEXITED(j->status) ? WEXITSTATUS(j->status) : 128 + WTERMSIG(j->status);
        int sig = WIFSIGNALED(j->status) ? WTERMSIG(j->status) : 0;
        answer(j->id, code, sig, 0, &j->o, &j->e, j->monitor ? &j->s : NULL);
        if (j->in >= 0) close(j->in);
        if (j->out >= 0) close(j->out);
        if (j->err >= 0) close(j->err);
        if (j->sync >= 0) close(j->sync);
        free(j->o.p);
        free(j->e.p);
        free(j->s.p);
        free(j->input);
        *pj = j->next;
        free(j);
      } else {
        pj = &j->next;
      }
    }
    if (!in_open && !jobs && !reply.len) return 0;

    struct pollfd fds[3 + 4 * 256];
    struct job *owner[3 + 4 * 256];
    int n = 0;
    fds[n] = (struct pollfd){ sigpipe[0], POLLIN, 0 }; owner[n++] = NULL;
    if (in_open) { fds[n] = (struct pollfd){ 0, POLLIN, 0 }; owner[n++] = NULL; }
    if (reply.len) { fds[n] = (struct pollfd){ 1, POLLOUT, 0 }; owner[n++] = NULL; }
    for (struct job *j = jobs; j && n < (int)(sizeof fds / sizeof fds[0]) - 4; j = j->next) {
      if (j->in >= 0) { fds[n] = (struct pollfd){ j->in, POLLOUT, 0 }; owner[n++] = j; }
      if (j->out >= 0) { fds[n] = (struct pollfd){ j->out, POLLIN, 0 }; owner[n++] = j; }
      if (j->err >= 0) { fds[n] = (struct pollfd){ j->err, POLLIN, 0 }; owner[n++] = j; }
      if (j->sync >= 0) { fds[n] = (struct pollfd){ j->sync, POLLIN, 0 }; owner[n++] = j; }
      if (j->sync_eof_at && !j->has_line) {
        long long left = j->sync_eof_at + 2000 - t;
        if (left < 0) left = 0;
        if (wait < 0 || left < wait) wait = left;
      }
      if (j->deadline && !j->exited) {
        if (j->deadline <= t) { kill(j->pid, SIGKILL); j->deadline = 0; }
        else if (wait < 0 || j->deadline - t < wait) wait = j->deadline - t;
      }
    }
    if (poll(fds, (nfds_t)n, (int)wait) < 0 && errno != EINTR) return 1;
    for (int i = 0; i < n; i++) {
      if (!fds[i].revents) continue;
      struct job *j = owner[i];
      if (!j && fds[i].fd == sigpipe[0]) {
        char tmp[64];
        while (read(sigpipe[0], tmp, sizeof tmp) > 0) {}
        reap();
      } else if (!j && fds[i].fd == 0) {
        char tmp[65536];
        ssize_t r = read(0, tmp, sizeof tmp);
        if (r > 0) put(&in, tmp, (size_t)r);
        else if (r == 0 || (errno != EINTR && errno != EAGAIN)) in_open = 0;
        size_t off = 0;
        while (in.len - off >= 4) {
          uint32_t len;
          memcpy(&len, in.p + off, 4);
          if (in.len - off - 4 < len) break;
          start(in.p + off + 4, len);
          off += 4 + len;
        }
        memmove(in.p, in.p + off, in.len - off);
        in.len -= off;
      } else if (!j && fds[i].fd == 1) {
        ssize_t w = write(1, reply.p, reply.len);
        if (w > 0) { memmove(reply.p, reply.p + w, reply.len - (size_t)w); reply.len -= (size_t)w; }
        else if (w < 0 && errno != EAGAIN && errno != EINTR) reply.len = 0; /* the daemon is gone */
      } else if (j && fds[i].fd == j->in) {
        ssize_t w = write(j->in, j->input + j->input_off, j->input_len - j->input_off);
        if (w > 0) j->input_off += (size_t)w;
        if ((w < 0 && errno != EAGAIN && errno != EINTR) || j->input_off == j->input_len) { close(j->in); j->in = -1; }
      } else if (j && fds[i].fd == j->out) {
        drain(&j->out, &j->o);
      } else if (j && fds[i].fd == j->err) {
        drain(&j->err, &j->e);
      } else if (j && fds[i].fd == j->sync) {
        drain_sync(j);
      }
    }
  }
}
