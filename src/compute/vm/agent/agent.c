// silo-agent: PID 1 of a Silo utility VM. It loads the virtio modules, finds its virtio-serial ports and then serves
// the host over the control port: it mounts the container's root (read-only layer disks under an overlay whose upper
// layer is the scratch disk), starts processes in the container's PID namespace, streams their stdio, reports exits,
// and logs the init process' output to the log port. When the init process exits the VM powers off.
//
// Wire format (both ways, little-endian): u32 len | u8 op | u32 proc | u32 seq | payload[len-9].
// Most payloads are NUL-terminated "key=value" strings; stdio payloads are raw bytes. See docs/vm.md.
#define _GNU_SOURCE
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <grp.h>
#include <poll.h>
#include <sched.h>
#include <signal.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/mount.h>
#include <sys/prctl.h>
#include <sys/sysmacros.h>
#include <sys/reboot.h>
#include <sys/signalfd.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/time.h>
#include <sys/types.h>
#include <sys/wait.h>
#include <linux/random.h>
#include <arpa/inet.h>
#include <net/if.h>
#include <net/if_arp.h>
#include <net/route.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <termios.h>
#include <sys/mman.h>
#include <time.h>
#include <unistd.h>

enum { OP_HELLO = 1, OP_IDENTITY, OP_ROOT, OP_FILE, OP_NET, OP_CREATE, OP_START, OP_STDIN, OP_SIGNAL, OP_RESIZE,
       OP_STATS, OP_PS, OP_POWEROFF, OP_READFILE, OP_DESTROY, OP_FS, OP_FWRITE, OP_LOGROTATED, OP_JITFILL };
enum { OP_READY = 64, OP_OUT, OP_ERR, OP_EXIT, OP_REPLY, OP_ERROR, OP_LOGFULL };

#ifndef BLKFLSBUF
#define BLKFLSBUF _IO(0x12, 97)
#endif
#define MAX_FRAME (1 << 20)
#define MAX_PROCS 256

// A container in the guest: the VM's own (id 0: root /root, the VM's log and exit ports) or one more of a pod's
// (id from the host: its root, scratch and layers under /run/c<id>, its own cgroup, log and exit ports).
#define MAX_CTRS 32
struct ctr {
  uint32_t id;
  int used, mounted, layers, nnp, nxg, reaped; // nnp, xg: its init's no_new_privs and supplemental groups, which every
  gid_t xg[32];                                // process of it gets; reaped: its init exited and its root came down (the host then destroys it)
  char root[48], run[48], cg[48];
  pid_t init_pid;
  int logfd, exitfd;
  // The log's hard cap: what may go into the file QEMU writes before the host has rotated it (0: none). At the cap
  // the init's output is held (not read: the writer blocks, as docker's does) until the host says it rotated, so the
  // log stays within its bound even while no daemon runs.
  unsigned long long logcap, logged;
  int log_held;
  // The thrash guard (thrash_check): a PSI trigger on its cgroup's memory.pressure (-1: none), the limit hits counted
  // and the time (s) when it last fired, how many windows in a row it fired in, and whether it killed the container.
  int psi_fd, psi_streak, thrash_killed;
  long long psi_hits, psi_at;
};
static struct ctr ctrs[MAX_CTRS];

struct proc {
  uint32_t id;
  struct ctr *ct;
  pid_t pid;
  int out, err, in, go, fail; // pty master in `out` (and `in`) with a tty
  int tty, init, started, exited, status;
  char partial[2]; // log records: whether the last record of stdout/stderr ended mid-line
};

static struct proc procs[MAX_PROCS];

static void say(const char *fmt, ...);
static int open_port(const char *want);
static void thrash_arm(struct ctr *c);

// The container `id`; with `make`, a free slot is taken for it (paths set, its ports opened).
static struct ctr *ctr_get(uint32_t id, int make) {
  for (int i = 0; i < MAX_CTRS; i++) if (ctrs[i].used && ctrs[i].id == id) return &ctrs[i];
  if (!make) return NULL;
  for (int i = 1; i < MAX_CTRS; i++) {
    struct ctr *c = &ctrs[i];
    if (c->used) continue;
    memset(c, 0, sizeof *c);
    c->used = 1; c->id = id; c->psi_fd = -1;
    snprintf(c->run, sizeof c->run, "/run/c%u", id);
    snprintf(c->root, sizeof c->root, "/run/c%u/root", id);
    snprintf(c->cg, sizeof c->cg, "/sys/fs/cgroup/c%u", id);
    char n[64];
    snprintf(n, sizeof n, "silo.log.%u", id); c->logfd = open_port(n);
    snprintf(n, sizeof n, "silo.exit.%u", id); c->exitfd = open_port(n);
    if (c->logfd >= 0) fcntl(c->logfd, F_SETFL, 0);
    if (c->exitfd >= 0) fcntl(c->exitfd, F_SETFL, 0);
    return c;
  }
  return NULL;
}

// "<the container's root><rel>", "<its cgroup><rel>" into a buffer.
#define AT(c, rel) ({ static char _b[8][4200]; static int _i; char *_p = _b[_i++ & 7]; snprintf(_p, 4200, "%s%s", (c)->root, rel); _p; })
#define CGF(c, rel) ({ static char _g[8][128]; static int _j; char *_q = _g[_j++ & 7]; snprintf(_q, 128, "%s%s", (c)->cg, rel); _q; })
static int ctl = -1, logfd = -1, exitfd = -1, ctl_down = 0;
static struct timespec ctl_down_at; // when the host went: polled for its return quickly for a while
static char *outq; static size_t outlen, outcap;
static char inbuf[MAX_FRAME + 16]; static size_t inlen;
static int pidns_root = -1; // the agent's own PID namespace, to return to after joining the container's

static void say(const char *fmt, ...) {
  va_list ap; va_start(ap, fmt);
  FILE *c = fopen("/dev/console", "w");
  if (c) { fputs("silo-agent: ", c); vfprintf(c, fmt, ap); fputc('\n', c); fclose(c); }
  va_end(ap);
}

static void put32(char *p, uint32_t v) { p[0] = v; p[1] = v >> 8; p[2] = v >> 16; p[3] = v >> 24; }
static uint32_t get32(const char *p) {
  const unsigned char *u = (const unsigned char *)p;
  return u[0] | u[1] << 8 | u[2] << 16 | (uint32_t)u[3] << 24;
}

// Frames go to a queue flushed when the port is writable; with no host listening they are dropped (whole frames,
// so a host that connects later reads a clean stream after its HELLO).
static void send_frame(int op, uint32_t proc, uint32_t seq, const void *data, size_t n) {
  if (ctl < 0 || ctl_down) return;
  if (outlen + n + 13 > 64u << 20) return; // a host that stopped reading loses output rather than the VM's memory
  if (outlen + n + 13 > outcap) { outcap = (outlen + n + 13) * 2; outq = realloc(outq, outcap); if (!outq) abort(); }
  char *h = outq + outlen;
  put32(h, n + 9); h[4] = op; put32(h + 5, proc); put32(h + 9, seq);
  if (n) memcpy(h + 13, data, n);
  outlen += n + 13;
}

static void fs_close_all(struct ctr *c);

static void host_gone(int drop_input) {
  ctl_down = 1; outlen = 0;
  fs_close_all(NULL); // a copy in progress ends with its host
  if (drop_input) inlen = 0;
  clock_gettime(CLOCK_MONOTONIC, &ctl_down_at);
}

// How long to sleep before looking for the host again. A template is saved right after its maker hung up, so a clone
// (whose clock goes on from the template's) looks every 2 ms and answers its host at once; later, every 50 ms.
static int down_poll_ms(void) {
  struct timespec now; clock_gettime(CLOCK_MONOTONIC, &now);
  return now.tv_sec - ctl_down_at.tv_sec < 3 ? 2 : 50;
}

static void flush_out(void) {
  while (outlen > 0 && !ctl_down) {
    ssize_t w = write(ctl, outq, outlen);
    if (w < 0) { if (errno == EINTR) continue; if (errno != EAGAIN) host_gone(0); return; }
    memmove(outq, outq + w, outlen - w); outlen -= w;
  }
}

// Strings payload builder.
struct kv { char buf[65536]; size_t n; };
static void kv_add(struct kv *k, const char *fmt, ...) {
  va_list ap; va_start(ap, fmt);
  int m = vsnprintf(k->buf + k->n, sizeof k->buf - k->n - 1, fmt, ap);
  va_end(ap);
  if (m < 0 || (size_t)m >= sizeof k->buf - k->n - 1) return;
  k->n += m + 1;
}
static void reply(uint32_t seq, struct kv *k) { send_frame(OP_REPLY, 0, seq, k ? k->buf : NULL, k ? k->n : 0); }
static void fail(uint32_t seq, const char *fmt, ...) {
  char m[1024]; va_list ap; va_start(ap, fmt); vsnprintf(m, sizeof m, fmt, ap); va_end(ap);
  send_frame(OP_ERROR, 0, seq, m, strlen(m));
}

// Iterate "key=value" strings of a payload.
static const char *kv_next(const char *p, const char *end, const char **key, size_t *klen, const char **val) {
  if (p >= end) return NULL;
  const char *z = memchr(p, 0, end - p);
  if (!z) return NULL;
  const char *eq = memchr(p, '=', z - p);
  *key = p; *klen = eq ? (size_t)(eq - p) : (size_t)(z - p); *val = eq ? eq + 1 : z;
  return z + 1;
}
#define KEY(k) (klen == sizeof(k) - 1 && memcmp(key, k, klen) == 0)

#include "fs.c"

static int write_file(const char *path, const char *s) {
  int fd = open(path, O_WRONLY | O_CLOEXEC);
  if (fd < 0) return -1;
  ssize_t w = write(fd, s, strlen(s));
  int e = errno; close(fd); errno = e;
  return w < 0 ? -1 : 0;
}

static long long read_num(const char *path, const char *key) {
  char b[4096]; int fd = open(path, O_RDONLY | O_CLOEXEC);
  if (fd < 0) return -1;
  ssize_t n = read(fd, b, sizeof b - 1); close(fd);
  if (n <= 0) return -1;
  b[n] = 0;
  if (!key) return strtoll(b, NULL, 10);
  for (char *l = b; l && *l; l = strchr(l, '\n') ? strchr(l, '\n') + 1 : NULL) {
    size_t kl = strlen(key);
    if (strncmp(l, key, kl) == 0 && l[kl] == ' ') return strtoll(l + kl + 1, NULL, 10);
  }
  return -1;
}

static void load_modules(void) {
  FILE *f = fopen("/lib/modules/order", "r");
  char name[256], path[512];
  if (!f) return;
  while (fgets(name, sizeof name, f)) {
    name[strcspn(name, "\n")] = 0;
    snprintf(path, sizeof path, "/lib/modules/%s", name);
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0) continue;
    // Under TCG on a very busy host the first module's signature check has been seen to fail now and then
    // (EKEYREJECTED) where the same file loads on the next try: try again before giving up on the VM.
    for (int tries = 1;; tries++) {
      if (syscall(SYS_finit_module, fd, "", 0) == 0 || errno == EEXIST) break;
      if (errno != EKEYREJECTED || tries == 5) {
        say("module %s: %s", name, strerror(errno));
        break;
      }
      say("module %s: %s (try %d of 5), again", name, strerror(errno), tries);
      usleep(20000);
    }
    close(fd);
  }
  fclose(f);
}

// /dev/vportNpM whose /sys/class/virtio-ports/<it>/name is `want`; waits for the driver to probe it.
static int open_port(const char *want) {
  for (int tries = 0; tries < 2000; tries++) {
    DIR *d = opendir("/sys/class/virtio-ports");
    struct dirent *e;
    while (d && (e = readdir(d))) {
      char p[512], n[128] = {0};
      if (e->d_name[0] == '.') continue;
      snprintf(p, sizeof p, "/sys/class/virtio-ports/%s/name", e->d_name);
      int fd = open(p, O_RDONLY);
      if (fd < 0) continue;
      ssize_t r = read(fd, n, sizeof n - 1); close(fd);
      if (r > 0 && n[r - 1] == '\n') n[r - 1] = 0;
      if (strcmp(n, want) == 0) {
        snprintf(p, sizeof p, "/dev/%s", e->d_name);
        closedir(d);
        return open(p, O_RDWR | O_NONBLOCK | O_CLOEXEC);
      }
    }
    if (d) closedir(d);
    usleep(5000);
  }
  return -1;
}

// The disks present at boot, by serial: read once before a template is saved (reading a virtio-blk serial is a
// request to the device, which costs under TCG), so a clone finds its slots without asking again.
static struct { char serial[24]; char dev[16]; } boot_disks[32];
static int n_boot_disks;

static int disk_serial(const char *name, char *s, size_t n) {
  char p[512]; snprintf(p, sizeof p, "/sys/block/%s/serial", name);
  int fd = open(p, O_RDONLY);
  if (fd < 0) return -1;
  ssize_t r = read(fd, s, n - 1); close(fd);
  if (r <= 0) return -1;
  s[r] = 0; if (s[r - 1] == '\n') s[r - 1] = 0;
  return 0;
}

static void index_boot_disks(void) {
  DIR *d = opendir("/sys/block"); struct dirent *e;
  while (d && (e = readdir(d)) && n_boot_disks < 32) {
    if (strncmp(e->d_name, "vd", 2) != 0 || strlen(e->d_name) >= sizeof boot_disks[0].dev) continue;
    if (disk_serial(e->d_name, boot_disks[n_boot_disks].serial, sizeof boot_disks[0].serial) < 0) continue;
    snprintf(boot_disks[n_boot_disks++].dev, sizeof boot_disks[0].dev, "%s", e->d_name);
  }
  if (d) closedir(d);
}

// /dev/vdX whose virtio serial is `serial`: a boot disk from the index, a hot-added one by looking (it may still be
// being probed: wait for it).
static int find_disk(const char *serial, char *dev, size_t n) {
  for (int i = 0; i < n_boot_disks; i++) if (strcmp(boot_disks[i].serial, serial) == 0) { snprintf(dev, n, "/dev/%s", boot_disks[i].dev); return 0; }
  for (int tries = 0; tries < 5000; tries++) {
    DIR *d = opendir("/sys/block");
    struct dirent *e;
    while (d && (e = readdir(d))) {
      char p[512], s[128] = {0};
      if (strncmp(e->d_name, "vd", 2) != 0) continue;
      int known = 0;
      for (int i = 0; i < n_boot_disks; i++) known |= strcmp(boot_disks[i].dev, e->d_name) == 0;
      if (known || disk_serial(e->d_name, s, sizeof s) < 0) continue;
      if (strcmp(s, serial) == 0) {
        snprintf(p, sizeof p, "/sys/block/%s/size", e->d_name);
        snprintf(dev, n, "/dev/%s", e->d_name);
        if (read_num(p, NULL) > 0 && access(dev, F_OK) == 0) { closedir(d); return 0; }
        break;
      }
    }
    if (d) closedir(d);
    usleep(2000);
  }
  errno = ENODEV;
  return -1;
}

static int mkdir_p(const char *path, mode_t mode) {
  char t[4096]; snprintf(t, sizeof t, "%s", path);
  for (char *p = t + 1; *p; p++) if (*p == '/') { *p = 0; mkdir(t, mode); *p = '/'; }
  return mkdir(t, mode) < 0 && errno != EEXIST ? -1 : 0;
}

static void op_identity(uint32_t seq, const char *p, const char *end) {
  const char *key, *val; size_t klen;
  while ((p = kv_next(p, end, &key, &klen, &val))) {
    if (KEY("time")) {
      long long ns = strtoll(val, NULL, 10);
      struct timespec ts = { ns / 1000000000LL, ns % 1000000000LL };
      clock_settime(CLOCK_REALTIME, &ts);
    } else if (KEY("hostname")) sethostname(val, strlen(val));
    else if (KEY("seed")) {
      // A clone starts with its template's RNG state: mix fresh host entropy in and credit it.
      struct { struct rand_pool_info i; unsigned char b[64]; } r;
      size_t n = 0;
      for (; n < sizeof r.b && val[2 * n] && val[2 * n + 1]; n++) sscanf(val + 2 * n, "%2hhx", &r.b[n]);
      r.i.entropy_count = n * 8; r.i.buf_size = n;
      int fd = open("/dev/urandom", O_WRONLY | O_CLOEXEC);
      if (fd >= 0) { ioctl(fd, RNDADDENTROPY, &r); close(fd); }
    }
  }
  reply(seq, NULL);
}

static int bind_into_root(struct ctr *c, const char *src, const char *target, int ro) {
  char t[4096]; snprintf(t, sizeof t, "%s%s", c->root, target);
  struct stat st;
  if (stat(src, &st) < 0) return -1;
  if (S_ISDIR(st.st_mode)) mkdir_p(t, 0755);
  else if (access(t, F_OK) < 0) {
    char d[4096]; snprintf(d, sizeof d, "%s", t); *strrchr(d, '/') = 0; mkdir_p(d, 0755);
    int fd = open(t, O_CREAT | O_WRONLY | O_CLOEXEC, 0644); if (fd >= 0) close(fd);
  }
  if (mount(src, t, NULL, MS_BIND, NULL) < 0) return -1;
  if (ro) mount(NULL, t, NULL, MS_BIND | MS_REMOUNT | MS_RDONLY, NULL);
  return 0;
}

// A bind mount or volume: `<tag>:<0|1 read-only>:<path>`, the host's virtiofs device of that tag mounted at path
// (made in the root if missing, as runc does). The host enforces read-only too (its virtiofsd sees a read-only tree).
#define MAX_BINDS 8
#define MAX_POD_BINDS 64
static int mount_share(struct ctr *c, const char *spec, uint32_t seq) {
  char tag[16]; int ro = 0, n = 0;
  if (sscanf(spec, "%15[^:]:%d:%n", tag, &ro, &n) != 2 || !n || spec[n] != '/' || strstr(spec + n, "/../") || (strlen(spec + n) >= 3 && !strcmp(spec + strlen(spec) - 3, "/.."))) {
    fail(seq, "bad bind %s", spec); return -1;
  }
  const char *path = spec + n;
  char t[4096]; snprintf(t, sizeof t, "%s%s", c->root, path);
  if (mkdir_p(t, 0755) < 0) { fail(seq, "bind %s: mkdir: %s", path, strerror(errno)); return -1; }
  int rc, tries = 0;
  // Probed at boot after a cold boot; hot-added after a restore (ACPI under TCG: ≈0.3–1 s, more when loaded): up to 30 s.
  while ((rc = mount(tag, t, "virtiofs", ro ? MS_RDONLY : 0, NULL)) < 0 && (errno == EINVAL || errno == ENOENT || errno == ENODEV) && tries++ < 3000) usleep(10000);
  if (rc < 0) { fail(seq, "bind %s (virtiofs %s): %s", path, tag, strerror(errno)); return -1; }
  return 0;
}

// A mount through the pod's share (a container of a pod's VM): `<rel>:<0|1 read-only>:<path>`. The host bound the
// mount's source (a directory or a single file) at <rel> under its one share directory; the share (virtiofs tag
// `pod`, hot-added after a restore, so it may take a moment to show up) is mounted once at POD_SHARE, and <rel> is
// bound from there onto the container's path. Read-only is the host's too: its bind is read-only for virtiofsd.
#define POD_SHARE "/run/pod"
static int pod_share_up = 0;
static int mount_pod_bind(struct ctr *c, const char *spec, uint32_t seq) {
  char rel[256]; int ro = 0, n = 0;
  if (sscanf(spec, "%255[^:]:%d:%n", rel, &ro, &n) != 2 || !n || spec[n] != '/' || strstr(rel, "..") || rel[0] == '/' || strstr(spec + n, "/../") ||
      (strlen(spec + n) >= 3 && !strcmp(spec + strlen(spec) - 3, "/.."))) {
    fail(seq, "bad pod bind %s", spec); return -1;
  }
  if (!pod_share_up) {
    mkdir_p(POD_SHARE, 0755);
    int rc, tries = 0;
    // An ACPI hot-add under TCG takes ≈0.3–1 s, more on a loaded host: up to 30 s.
    while ((rc = mount("pod", POD_SHARE, "virtiofs", 0, NULL)) < 0 && (errno == EINVAL || errno == ENOENT || errno == ENODEV) && tries++ < 3000) usleep(10000);
    if (rc < 0) { fail(seq, "the pod's share (virtiofs pod): %s", strerror(errno)); return -1; }
    pod_share_up = 1;
  }
  char src[512]; snprintf(src, sizeof src, POD_SHARE "/%s", rel);
  if (bind_into_root(c, src, spec + n, ro) < 0) { fail(seq, "bind %s: %s", spec + n, strerror(errno)); return -1; }
  return 0;
}

// A container's /dev at `dev`: a tmpfs with the usual nodes and links, its own devpts and shm.
static void make_dev(const char *dev) {
  char t[4200];
  mount("tmpfs", dev, "tmpfs", MS_NOSUID | MS_STRICTATIME, "mode=755,size=65536k");
  static const struct { const char *n; int maj, min; } nodes[] = {
    {"null", 1, 3}, {"zero", 1, 5}, {"full", 1, 7}, {"random", 1, 8}, {"urandom", 1, 9}, {"tty", 5, 0}};
  for (size_t i = 0; i < sizeof nodes / sizeof *nodes; i++) {
    snprintf(t, sizeof t, "%s/%s", dev, nodes[i].n);
    mknod(t, S_IFCHR | 0666, makedev(nodes[i].maj, nodes[i].min)); chmod(t, 0666);
  }
  static const struct { const char *n; mode_t m; } dirs[] = {{"pts", 0755}, {"shm", 01777}, {"mqueue", 0755}};
  for (size_t i = 0; i < sizeof dirs / sizeof *dirs; i++) { snprintf(t, sizeof t, "%s/%s", dev, dirs[i].n); mkdir_p(t, dirs[i].m); }
  snprintf(t, sizeof t, "%s/pts", dev);
  mount("devpts", t, "devpts", MS_NOSUID | MS_NOEXEC, "newinstance,ptmxmode=0666,mode=0620,gid=5");
  snprintf(t, sizeof t, "%s/shm", dev);
  mount("shm", t, "tmpfs", MS_NOSUID | MS_NODEV | MS_NOEXEC, "mode=1777,size=65536k");
  static const struct { const char *n, *to; } links[] = {
    {"ptmx", "pts/ptmx"}, {"fd", "/proc/self/fd"}, {"stdin", "/proc/self/fd/0"}, {"stdout", "/proc/self/fd/1"}, {"stderr", "/proc/self/fd/2"}};
  for (size_t i = 0; i < sizeof links / sizeof *links; i++) { snprintf(t, sizeof t, "%s/%s", dev, links[i].n); symlink(links[i].to, t); }
}

// What a container's root gets from the agent's own mounts, made at boot so that a template holds them: each step is
// kernel code a clone would otherwise run, and TCG translate, for the first time in its start. The VM's own
// container's /sys and /dev (moved into its root), and one empty read-only directory that masks directories.
#define DEV_AHEAD "/run/ahead/dev"
#define SYS_AHEAD "/run/ahead/sys"
#define EMPTY_DIR "/run/ahead/empty"
// The topmost lower layer of every root, as dockerd's init layer: /etc/mtab -> /proc/mounts.
#define INIT_LAYER "/run/ahead/init"
#define SYS_FLAGS (MS_RDONLY | MS_NOSUID | MS_NODEV | MS_NOEXEC)
static int ahead_ready;

static void make_ahead(void) {
  mkdir_p(DEV_AHEAD, 0755); mkdir_p(SYS_AHEAD, 0555); mkdir_p(EMPTY_DIR, 0755);
  mkdir_p(INIT_LAYER "/etc", 0755); symlink("/proc/mounts", INIT_LAYER "/etc/mtab");
  make_dev(DEV_AHEAD);
  mount("sysfs", SYS_AHEAD, "sysfs", SYS_FLAGS, NULL);
  mount("tmpfs", EMPTY_DIR, "tmpfs", MS_RDONLY, "size=0");
  ahead_ready = 1;
}

// The container's root: each layer disk read-only, the scratch disk holding upper/ and work/, overlay on ROOT;
// then /proc (mounted by the init process in its namespace), /sys, /dev and /dev/pts inside it; and the job cgroup.
static void op_root(uint32_t seq, uint32_t id, const char *p, const char *end) {
  const char *key, *val; size_t klen;
  struct ctr *c = ctr_get(id, 1);
  if (!c) return fail(seq, "too many containers");
  if (c->mounted) return fail(seq, "container %u has its root", id);
  if (id && (c->logfd < 0 || c->exitfd < 0)) return fail(seq, "the log and exit ports of container %u are missing", id);
  char lower[8192] = "", dev[64], dir[64];
  int nl = 0, have_scratch = 0;
  long long mem = 0, pids = 0, weight = 0; char cpu[64] = "";
  const char *binds[MAX_BINDS]; int nb = 0;
  const char *pbinds[MAX_POD_BINDS]; int npb = 0;
  while ((p = kv_next(p, end, &key, &klen, &val))) {
    if (KEY("bind")) {
      if (nb == MAX_BINDS) return fail(seq, "more than %d bind mounts", MAX_BINDS);
      binds[nb++] = val;
    } else if (KEY("pbind")) {
      if (npb == MAX_POD_BINDS) return fail(seq, "more than %d pod mounts", MAX_POD_BINDS);
      pbinds[npb++] = val;
    } else if (KEY("layer") || KEY("scratch")) {
      int scratch = KEY("scratch");
      if (find_disk(val, dev, sizeof dev) < 0) return fail(seq, "disk %s did not appear", val);
      if (scratch) snprintf(dir, sizeof dir, "%s/scratch", c->run);
      else snprintf(dir, sizeof dir, "%s/layer%d", c->run, nl++);
      mkdir_p(dir, 0700);
      // A clone's disk slot held a placeholder when its template booted: drop what the guest cached of it then
      // (the partition scan read its first blocks) before reading the real disk now behind it.
      { int bfd = open(dev, O_RDONLY | O_CLOEXEC); if (bfd >= 0) { ioctl(bfd, BLKFLSBUF, 0); close(bfd); } }
      // A disk just probed may still be being registered (ENXIO) for a moment.
      int rc, tries = 0;
      while ((rc = mount(dev, dir, "ext4", scratch ? 0 : MS_RDONLY, scratch ? "noinit_itable" : "noload")) < 0 && (errno == ENXIO || errno == ENOENT) && tries++ < 1000) usleep(5000);
      if (rc < 0) return fail(seq, "mount %s (%s): %s", val, dev, strerror(errno));
      if (scratch) have_scratch = 1;
      else { // overlay wants the top layer first
        c->layers = nl;
        char t[8192]; snprintf(t, sizeof t, "%s%s%s", dir, lower[0] ? ":" : "", lower); snprintf(lower, sizeof lower, "%s", t);
      }
    } else if (KEY("memory")) mem = strtoll(val, NULL, 10);
    else if (KEY("pids")) pids = strtoll(val, NULL, 10);
    else if (KEY("weight")) weight = strtoll(val, NULL, 10);
    else if (KEY("cpu")) snprintf(cpu, sizeof cpu, "%s", val);
  }
  if (!have_scratch || !nl) return fail(seq, "root needs layers and a scratch");
  char up[128], wk[128];
  snprintf(up, sizeof up, "%s/scratch/upper", c->run); snprintf(wk, sizeof wk, "%s/scratch/work", c->run);
  mkdir_p(up, 0755); mkdir_p(wk, 0700); mkdir_p(c->root, 0755);
  char opts[9000];
  snprintf(opts, sizeof opts, "lowerdir=" INIT_LAYER ":%s,upperdir=%s,workdir=%s,index=off,redirect_dir=off,metacopy=off", lower, up, wk);
  if (mount("overlay", c->root, "overlay", 0, opts) < 0) return fail(seq, "overlay: %s", strerror(errno));
  c->mounted = 1;
  mkdir_p(AT(c, "/proc"), 0555); mkdir_p(AT(c, "/sys"), 0555); mkdir_p(AT(c, "/dev"), 0755);
  // The VM's own container takes the /sys and /dev made at boot (its template holds them): a mount call each.
  int own = c == &ctrs[0] && ahead_ready;
  if (c == &ctrs[0]) ahead_ready = 0;
  if (!own || mount(SYS_AHEAD, AT(c, "/sys"), NULL, MS_MOVE, NULL) < 0) mount("sysfs", AT(c, "/sys"), "sysfs", SYS_FLAGS, NULL);
  if (!own || mount(DEV_AHEAD, AT(c, "/dev"), NULL, MS_MOVE, NULL) < 0) make_dev(AT(c, "/dev"));
  mkdir_p(c->cg, 0755);
  char b[64];
  if (mem > 0) { snprintf(b, sizeof b, "%lld", mem); write_file(CGF(c, "/memory.max"), b); write_file(CGF(c, "/memory.swap.max"), "0"); thrash_arm(c); }
  if (pids > 0) { snprintf(b, sizeof b, "%lld", pids); write_file(CGF(c, "/pids.max"), b); }
  if (cpu[0]) write_file(CGF(c, "/cpu.max"), cpu);
  if (weight > 0) { snprintf(b, sizeof b, "%lld", weight); write_file(CGF(c, "/cpu.weight"), b); }
  // Last, so a bind under /dev lands on the container's /dev; ctr_down unmounts them with the rest under the root.
  for (int i = 0; i < nb; i++) if (mount_share(c, binds[i], seq) < 0) return;
  for (int i = 0; i < npb; i++) if (mount_pod_bind(c, pbinds[i], seq) < 0) return;
  reply(seq, NULL);
}

// A file for the container (resolv.conf, hosts, hostname): kept outside the scratch and bound over its path.
static void op_file(uint32_t seq, uint32_t id, const char *p, const char *end) {
  static int n = 0;
  struct ctr *c = ctr_get(id, 0);
  if (!c || !c->mounted) return fail(seq, "container %u has no root", id);
  const char *key, *val, *path = NULL, *data = NULL; size_t klen;
  while ((p = kv_next(p, end, &key, &klen, &val))) {
    if (KEY("path")) path = val; else if (KEY("data")) data = val;
  }
  if (!path || !data || path[0] != '/' || strstr(path, "..")) return fail(seq, "file needs an absolute path and data");
  char src[64]; snprintf(src, sizeof src, "/run/files/%d", n++);
  mkdir_p("/run/files", 0755);
  int fd = open(src, O_CREAT | O_TRUNC | O_WRONLY | O_CLOEXEC, 0644);
  if (fd < 0 || write(fd, data, strlen(data)) < 0) return fail(seq, "write %s: %s", path, strerror(errno));
  close(fd);
  // Writable, as dockerd binds /etc/hosts and the like (a vm container's root is never read-only); what a container
  // writes there stays in this VM's memory.
  if (bind_into_root(c, src, path, 0) < 0) return fail(seq, "bind %s: %s", path, strerror(errno));
  reply(seq, NULL);
}

static int run_busybox(char *const argv[]) {
  pid_t pid = fork();
  if (pid == 0) { execv("/bin/busybox", argv); _exit(127); }
  int st; if (pid < 0 || waitpid(pid, &st, 0) < 0) return -1;
  return WIFEXITED(st) && WEXITSTATUS(st) == 0 ? 0 : -1;
}

// The endpoint's address on the NIC with the endpoint's MAC (hot-added by the host before this request).
static void op_net(uint32_t seq, const char *p, const char *end) {
  const char *key, *val; size_t klen;
  char mac[32] = "", ifmac[32] = "", addr[64] = "", gw[64] = "", mtu[16] = "", ifname[64] = "";
  while ((p = kv_next(p, end, &key, &klen, &val))) {
    if (KEY("mac")) snprintf(mac, sizeof mac, "%s", val);
    else if (KEY("ifmac")) snprintf(ifmac, sizeof ifmac, "%s", val);
    else if (KEY("addr")) snprintf(addr, sizeof addr, "%s", val);
    else if (KEY("gw")) snprintf(gw, sizeof gw, "%s", val);
    else if (KEY("mtu")) snprintf(mtu, sizeof mtu, "%s", val);
  }
  for (int tries = 0; tries < 3000 && !ifname[0]; tries++) {
    DIR *d = opendir("/sys/class/net"); struct dirent *e;
    while (d && (e = readdir(d))) {
      char pth[512], a[64] = {0};
      if (e->d_name[0] == '.') continue;
      snprintf(pth, sizeof pth, "/sys/class/net/%s/address", e->d_name);
      int fd = open(pth, O_RDONLY); if (fd < 0) continue;
      ssize_t r = read(fd, a, sizeof a - 1); close(fd);
      if (r > 0 && a[r - 1] == '\n') a[r - 1] = 0;
      if (strcasecmp(a, ifmac[0] ? ifmac : mac) == 0) { snprintf(ifname, sizeof ifname, "%s", e->d_name); break; }
    }
    if (d) closedir(d);
    if (!ifname[0]) usleep(5000);
  }
  if (!ifname[0]) return fail(seq, "no NIC with MAC %s appeared", ifmac[0] ? ifmac : mac);
  // ioctls rather than `ip`: a fork + exec of busybox costs ~100 ms under TCG, and this takes five steps.
  int fd = socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC, 0);
  struct ifreq ifr; memset(&ifr, 0, sizeof ifr); snprintf(ifr.ifr_name, IFNAMSIZ, "%s", ifname);
  unsigned int m[6];
  // The NIC booted with the template's MAC; it takes the endpoint's (virtio-net tells QEMU's receive filter).
  if (sscanf(mac, "%x:%x:%x:%x:%x:%x", &m[0], &m[1], &m[2], &m[3], &m[4], &m[5]) != 6) { close(fd); return fail(seq, "bad MAC %s", mac); }
  ifr.ifr_hwaddr.sa_family = ARPHRD_ETHER;
  for (int i = 0; i < 6; i++) ifr.ifr_hwaddr.sa_data[i] = (char)m[i];
  if (ioctl(fd, SIOCSIFHWADDR, &ifr) < 0) { close(fd); return fail(seq, "MAC %s on %s: %s", mac, ifname, strerror(errno)); }
  char ip[64]; snprintf(ip, sizeof ip, "%s", addr);
  char *slash = strchr(ip, '/'); int prefix = slash ? atoi(slash + 1) : 32; if (slash) *slash = 0;
  struct sockaddr_in *sin = (struct sockaddr_in *)&ifr.ifr_addr;
  memset(&ifr.ifr_addr, 0, sizeof ifr.ifr_addr); sin->sin_family = AF_INET;
  if (inet_pton(AF_INET, ip, &sin->sin_addr) != 1 || ioctl(fd, SIOCSIFADDR, &ifr) < 0) { close(fd); return fail(seq, "address %s on %s: %s", addr, ifname, strerror(errno)); }
  sin->sin_addr.s_addr = prefix ? htonl(0xffffffffu << (32 - prefix)) : 0;
  if (ioctl(fd, SIOCSIFNETMASK, &ifr) < 0) { close(fd); return fail(seq, "netmask /%d on %s: %s", prefix, ifname, strerror(errno)); }
  if (mtu[0]) { ifr.ifr_mtu = atoi(mtu); if (ioctl(fd, SIOCSIFMTU, &ifr) < 0) { close(fd); return fail(seq, "mtu %s on %s: %s", mtu, ifname, strerror(errno)); } }
  if (ioctl(fd, SIOCGIFFLAGS, &ifr) < 0) { close(fd); return fail(seq, "flags of %s: %s", ifname, strerror(errno)); }
  ifr.ifr_flags |= IFF_UP | IFF_RUNNING;
  if (ioctl(fd, SIOCSIFFLAGS, &ifr) < 0) { close(fd); return fail(seq, "up %s: %s", ifname, strerror(errno)); }
  if (gw[0]) {
    struct rtentry rt; memset(&rt, 0, sizeof rt);
    struct sockaddr_in *g = (struct sockaddr_in *)&rt.rt_gateway, *dst = (struct sockaddr_in *)&rt.rt_dst, *msk = (struct sockaddr_in *)&rt.rt_genmask;
    g->sin_family = dst->sin_family = msk->sin_family = AF_INET;
    rt.rt_flags = RTF_UP | RTF_GATEWAY; rt.rt_dev = ifname;
    if (inet_pton(AF_INET, gw, &g->sin_addr) != 1 || ioctl(fd, SIOCADDRT, &rt) < 0) { close(fd); return fail(seq, "default route via %s: %s", gw, strerror(errno)); }
  }
  close(fd);
  struct kv k = {.n = 0}; kv_add(&k, "ifname=%s", ifname); reply(seq, &k);
}

static struct proc *find_proc(uint32_t id) {
  for (int i = 0; i < MAX_PROCS; i++) if (procs[i].pid && procs[i].id == id) return &procs[i];
  return NULL;
}

static void op_create(uint32_t seq, uint32_t id, const char *p, const char *end) {
  const char *key, *val; size_t klen;
  char *argv[1024], *envp[1024]; int argc = 0, envc = 0;
  const char *cwd = "/"; uid_t uid = 0; gid_t gid = 0; gid_t groups[64]; int ngroups = 0;
  int tty = 0, stdin_on = 0, init = 0, reaper = 0, nnp = 0; struct winsize ws = {24, 80, 0, 0};
  const char *oom = NULL, *masked[64], *rdonly[64]; int nmask = 0, nro = 0; gid_t xg[32]; int nxg = 0;
  unsigned long long logcap = 0, logged = 0; // the log's cap and what its current file holds (init only)
  uint32_t cid = 0; long long pidns = -1; // pidns: the container whose init's PID namespace an init joins
  while ((p = kv_next(p, end, &key, &klen, &val))) {
    if (KEY("arg") && argc < 1023) argv[argc++] = (char *)val;
    else if (KEY("env") && envc < 1023) envp[envc++] = (char *)val;
    else if (KEY("cwd")) cwd = val;
    else if (KEY("uid")) uid = strtoul(val, NULL, 10);
    else if (KEY("gid")) gid = strtoul(val, NULL, 10);
    else if (KEY("group") && ngroups < 64) groups[ngroups++] = strtoul(val, NULL, 10);
    else if (KEY("tty")) tty = atoi(val);
    else if (KEY("stdin")) stdin_on = atoi(val);
    else if (KEY("init")) init = atoi(val);
    else if (KEY("reaper")) reaper = atoi(val);
    else if (KEY("nnp")) nnp = atoi(val);
    else if (KEY("oom")) oom = val;
    else if (KEY("xgroup") && nxg < 32) xg[nxg++] = strtoul(val, NULL, 10);
    else if (KEY("mask") && nmask < 64 && val[0] == '/' && !strstr(val, "..")) masked[nmask++] = val;
    else if (KEY("ro") && nro < 64 && val[0] == '/' && !strstr(val, "..")) rdonly[nro++] = val;
    else if (KEY("ctr")) cid = strtoul(val, NULL, 10);
    else if (KEY("pidns")) pidns = strtoll(val, NULL, 10);
    else if (KEY("rows")) ws.ws_row = atoi(val);
    else if (KEY("cols")) ws.ws_col = atoi(val);
    else if (KEY("logcap")) logcap = strtoull(val, NULL, 10);
    else if (KEY("logged")) logged = strtoull(val, NULL, 10);
  }
  argv[argc] = NULL; envp[envc] = NULL;
  if (!argc) return fail(seq, "no command");
  if (find_proc(id)) return fail(seq, "process %u exists", id);
  struct ctr *ct = ctr_get(cid, 0), *nsof = ct;
  if (!ct || !ct->mounted) return fail(seq, "container %u has no root", cid);
  if (init && ct->init_pid) return fail(seq, "container %u has its init process", cid);
  if (init && pidns >= 0 && (!(nsof = ctr_get((uint32_t)pidns, 0)) || !nsof->init_pid)) return fail(seq, "container %lld is not running", pidns);
  if (!init && !ct->init_pid) return fail(seq, "the container is not running");
  if (init) { ct->nnp = nnp; ct->nxg = nxg; memcpy(ct->xg, xg, sizeof xg); ct->logcap = logcap; ct->logged = logged; ct->log_held = 0; } else nnp = ct->nnp;
  for (int i = 0; i < ct->nxg && ngroups < 64; i++) groups[ngroups++] = ct->xg[i];
  struct proc *pr = NULL;
  for (int i = 0; i < MAX_PROCS && !pr; i++) if (!procs[i].pid) pr = &procs[i];
  if (!pr) return fail(seq, "too many processes");
  int master = -1, slave = -1, pin[2] = {-1, -1}, pout[2], perr[2], go[2], fl[2];
  if (tty) {
    master = open(AT(ct, "/dev/pts/ptmx"), O_RDWR | O_NOCTTY | O_CLOEXEC); // the container's own devpts: ttyname() works inside
    int unlock = 0;
    if (master < 0 || ioctl(master, TIOCSPTLCK, &unlock) < 0) return fail(seq, "pty: %s", strerror(errno));
    slave = ioctl(master, TIOCGPTPEER, O_RDWR | O_NOCTTY);
    if (slave < 0) return fail(seq, "pty peer: %s", strerror(errno));
    ioctl(master, TIOCSWINSZ, &ws);
  } else {
    if ((stdin_on && pipe2(pin, O_CLOEXEC) < 0) || pipe2(pout, O_CLOEXEC) < 0 || pipe2(perr, O_CLOEXEC) < 0) return fail(seq, "pipe: %s", strerror(errno));
  }
  if (pipe2(go, O_CLOEXEC) < 0 || pipe2(fl, O_CLOEXEC) < 0) return fail(seq, "pipe: %s", strerror(errno));
  // The init process is PID 1 of a new PID namespace (or joins another container's: a pod's shared one); exec'd
  // processes join their container's.
  int joined = 0;
  if (!init || pidns >= 0) {
    char ns[64]; snprintf(ns, sizeof ns, "/proc/%d/ns/pid", nsof->init_pid);
    int fd = open(ns, O_RDONLY | O_CLOEXEC);
    if (fd < 0 || setns(fd, CLONE_NEWPID) < 0) { if (fd >= 0) close(fd); return fail(seq, "join the container: %s", strerror(errno)); }
    close(fd); joined = 1;
  }
  pid_t pid = init && !joined ? (pid_t)syscall(SYS_clone, CLONE_NEWPID | SIGCHLD, 0, 0, 0, 0) : fork();
  if (joined) setns(pidns_root, CLONE_NEWPID);
  if (pid < 0) return fail(seq, "fork: %s", strerror(errno));
  if (pid == 0) {
    char c = 0; int e;
    sigset_t all; sigemptyset(&all); sigprocmask(SIG_SETMASK, &all, NULL);
    setsid();
    if (tty) { ioctl(slave, TIOCSCTTY, 0); dup2(slave, 0); dup2(slave, 1); dup2(slave, 2); }
    else {
      int nul = open("/dev/null", O_RDONLY);
      dup2(stdin_on ? pin[0] : nul, 0); dup2(pout[1], 1); dup2(perr[1], 2);
    }
    char pidstr[32]; snprintf(pidstr, sizeof pidstr, "%d", getpid());
    // Into the job cgroup (by the root namespace's view of our pid, which /proc/self resolves for us).
    { int fd = open(CGF(ct, "/cgroup.procs"), O_WRONLY); if (fd >= 0) { if (write(fd, "0", 1) < 0) {} close(fd); } }
    if (read(go[0], &c, 1) != 1) _exit(126);
    if (init) { mount("proc", AT(ct, "/proc"), "proc", MS_NOSUID | MS_NODEV | MS_NOEXEC, NULL); }
    // Masked paths: an empty read-only tmpfs over a directory, /dev/null over a file; read-only ones bound onto
    // themselves read-only. What the root does not have is skipped (as runc does).
    for (int i = 0; i < nmask; i++) {
      struct stat mst; char *t = AT(ct, masked[i]);
      if (lstat(t, &mst) < 0 || S_ISLNK(mst.st_mode)) continue; // a link of the image must not lead the mount elsewhere
      if (S_ISDIR(mst.st_mode)) { if (mount(EMPTY_DIR, t, NULL, MS_BIND, NULL) < 0) mount("tmpfs", t, "tmpfs", MS_RDONLY, "size=0"); }
      else mount(AT(ct, "/dev/null"), t, NULL, MS_BIND, NULL);
    }
    for (int i = 0; i < nro; i++) {
      char *t = AT(ct, rdonly[i]); struct stat rst;
      if (lstat(t, &rst) < 0 || S_ISLNK(rst.st_mode) || mount(t, t, NULL, MS_BIND | MS_REC, NULL) < 0) continue;
      mount(NULL, t, NULL, MS_BIND | MS_REMOUNT | MS_RDONLY | MS_REC, NULL);
    }
    if (chroot(ct->root) < 0 || chdir("/") < 0) goto err;
    if (reaper) {
      // A tiny init (docker's --init, a pod's infra): it stays PID 1, reaps every orphan of the namespace, passes
      // signals on to the command and exits with its status.
      pid_t cmd = fork();
      if (cmd < 0) goto err;
      if (cmd > 0) {
        close(fl[1]);
        sigset_t every; sigfillset(&every); sigprocmask(SIG_SETMASK, &every, NULL);
        for (;;) {
          struct timespec ts = {1, 0}; siginfo_t si;
          int sig = sigtimedwait(&every, &si, &ts);
          if (sig > 0 && sig != SIGCHLD) kill(cmd, sig);
          int st; pid_t w;
          while ((w = waitpid(-1, &st, WNOHANG)) > 0) if (w == cmd) _exit(WIFEXITED(st) ? WEXITSTATUS(st) : 128 + WTERMSIG(st));
        }
      }
    }
    mkdir_p(cwd, 0755);
    if (chdir(cwd) < 0) goto err;
    if (oom) write_file("/proc/self/oom_score_adj", oom);
    if (setgroups(ngroups, groups) < 0 || setgid(gid) < 0 || setuid(uid) < 0) goto err;
    if (nnp && prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) < 0) goto err;
    environ = envp;
    execvp(argv[0], argv);
  err:
    e = errno;
    if (write(fl[1], &e, sizeof e) < 0) {}
    _exit(127);
  }
  if (tty) close(slave); else { if (stdin_on) close(pin[0]); close(pout[1]); close(perr[1]); }
  close(go[0]); close(fl[1]);
  memset(pr, 0, sizeof *pr);
  pr->id = id; pr->ct = ct; pr->pid = pid; pr->tty = tty; pr->init = init; pr->go = go[1]; pr->fail = fl[0];
  pr->out = tty ? master : pout[0]; pr->err = tty ? -1 : perr[0]; pr->in = tty ? master : (stdin_on ? pin[1] : -1);
  if (pr->out >= 0) fcntl(pr->out, F_SETFL, O_NONBLOCK);
  if (pr->err >= 0) fcntl(pr->err, F_SETFL, O_NONBLOCK);
  if (init) ct->init_pid = pid;
  struct kv k = {.n = 0}; kv_add(&k, "pid=%d", pid); reply(seq, &k);
}

static void op_start(uint32_t seq, struct proc *pr, const char *argv0) {
  char c = 1; int e = 0;
  if (pr->started) return reply(seq, NULL);
  if (write(pr->go, &c, 1) != 1) return fail(seq, "start: %s", strerror(errno));
  close(pr->go); pr->go = -1; pr->started = 1;
  ssize_t n = read(pr->fail, &e, sizeof e); // EOF = exec succeeded (close-on-exec)
  close(pr->fail); pr->fail = -1;
  if (n == sizeof e) {
    if (e == ENOENT && argv0 && !strchr(argv0, '/')) return fail(seq, "exec: \"%s\": executable file not found in $PATH", argv0);
    return fail(seq, "exec: \"%s\": %s", argv0 ? argv0 : "", strerror(e));
  }
  reply(seq, NULL);
}

static void log_record(struct proc *pr, int stream, const char *d, size_t n) {
  int logfd = pr->ct ? pr->ct->logfd : -1;
  if (logfd < 0) return;
  struct timespec ts; struct tm tm; char t[64], line[8192];
  clock_gettime(CLOCK_REALTIME, &ts); gmtime_r(&ts.tv_sec, &tm);
  strftime(t, sizeof t, "%Y-%m-%dT%H:%M:%S", &tm);
  while (n > 0) {
    const char *nl = memchr(d, '\n', n);
    size_t len = nl ? (size_t)(nl - d) : n;
    if (len > 4096) { len = 4096; nl = NULL; }
    int h = snprintf(line, sizeof line, "%s.%09ldZ %s %c ", t, ts.tv_nsec, stream == 1 ? "stdout" : "stderr", nl ? 'F' : 'P');
    memcpy(line + h, d, len); line[h + len] = '\n';
    for (size_t off = 0; off < h + len + 1;) { ssize_t w = write(logfd, line + off, h + len + 1 - off); if (w <= 0) break; off += w; }
    if (pr->ct) pr->ct->logged += h + len + 1;
    pr->partial[stream - 1] = !nl;
    d += len + (nl ? 1 : 0); n -= len + (nl ? 1 : 0);
  }
}

// A record's header, timestamp to tag, and its newline: each byte read becomes at most this much log.
#define LOG_RECORD_MAX 42

static void log_full(struct ctr *c) {
  if (c->log_held) return;
  c->log_held = 1;
  send_frame(OP_LOGFULL, c->id, 0, NULL, 0); // lost with no host: sent again at the next HELLO
}

// Returns 0 at EOF (or EIO: the pty's last holder went); 1 when there is nothing more now, or the log is full.
static int pump(struct proc *pr, int fd, int stream) {
  char b[32768];
  for (;;) {
    size_t want = sizeof b;
    struct ctr *c = pr->init ? pr->ct : NULL;
    if (c && c->logcap) {
      // No more read than can be logged below the cap, whatever its records look like.
      unsigned long long room = c->logged < c->logcap ? (c->logcap - c->logged) / LOG_RECORD_MAX : 0;
      if (room == 0) { log_full(c); return 1; }
      if (room < want) want = room;
    }
    ssize_t n = read(fd, b, want);
    if (n > 0) {
      send_frame(stream == 1 ? OP_OUT : OP_ERR, pr->id, 0, b, n);
      if (pr->init) log_record(pr, stream, b, n);
      continue;
    }
    if (n < 0 && errno == EINTR) continue;
    if (n < 0 && errno == EAGAIN) return 1;
    return 0;
  }
}

static void close_proc_fds(struct proc *pr) {
  if (pr->out >= 0) close(pr->out);
  if (pr->err >= 0) close(pr->err);
  if (pr->in >= 0 && pr->in != pr->out) close(pr->in);
  if (pr->go >= 0) close(pr->go);
  if (pr->fail >= 0) close(pr->fail);
  pr->out = pr->err = pr->in = pr->go = pr->fail = -1;
}

// Every process of the container killed, its root, layers and scratch unmounted (the scratch cleanly: it outlives the
// VM), its cgroup removed. Idempotent.
static void ctr_down(struct ctr *c) {
  char b[128];
  write_file(CGF(c, "/cgroup.kill"), "1");
  if (c->psi_fd >= 0) { close(c->psi_fd); c->psi_fd = -1; }
  fs_close_all(c);
  if (!c->mounted) return;
  sync();
  static const char *mnts[] = {"/dev/pts", "/dev/shm", "/dev", "/sys", "/proc"};
  for (size_t i = 0; i < sizeof mnts / sizeof *mnts; i++) umount2(AT(c, mnts[i]), MNT_DETACH);
  // Bound files (resolv.conf, hosts) first, then the overlay (its processes may take a moment to die).
  FILE *m = fopen("/proc/self/mounts", "r"); char line[1024], dev[256], at[512];
  size_t rl = strlen(c->root);
  while (m && fgets(line, sizeof line, m)) if (sscanf(line, "%255s %511s", dev, at) == 2 && strncmp(at, c->root, rl) == 0 && at[rl] == '/') umount2(at, MNT_DETACH);
  if (m) fclose(m);
  for (int i = 0; i < 100 && umount2(c->root, 0) < 0 && errno == EBUSY; i++) usleep(10000);
  umount2(c->root, MNT_DETACH);
  for (int i = 0; i < c->layers; i++) { snprintf(b, sizeof b, "%s/layer%d", c->run, i); umount2(b, MNT_DETACH); }
  snprintf(b, sizeof b, "%s/scratch", c->run);
  mount(NULL, b, NULL, MS_REMOUNT | MS_RDONLY, NULL);
  umount2(b, 0);
  sync();
  for (int i = 0; i < 50 && rmdir(c->cg) < 0 && errno == EBUSY; i++) usleep(10000);
  c->mounted = 0;
}

// The thrash guard. Without swap, a container at its memory limit whose only reclaimable pages are its own program
// text and files can livelock instead of being OOM-killed: each reclaim frees a few of those pages (progress, so the
// kernel retries instead of killing) and its processes fault them straight back in. On hardware that ends within
// moments; under TCG it was seen to last over five minutes, all its tasks stalled ≈2/3 of the time. So, as
// systemd-oomd does on hosts, a container whose tasks are all stalled on memory for half of two windows in a row
// (≈20 s) in which it kept hitting its limit is killed, and reported as OOM-killed.
#define THRASH_TRIGGER "full 5000000 10000000" // all its tasks stalled for 5 s of a 10 s window
static void thrash_arm(struct ctr *c) {
  int fd = open(CGF(c, "/memory.pressure"), O_RDWR | O_NONBLOCK | O_CLOEXEC);
  if (fd >= 0 && write(fd, THRASH_TRIGGER, sizeof THRASH_TRIGGER) < 0) { close(fd); fd = -1; }
  if (fd < 0) { say("container %u: no memory pressure trigger: %s", c->id, strerror(errno)); return; }
  c->psi_fd = fd;
  c->psi_hits = read_num(CGF(c, "/memory.events"), "max");
}

// The trigger fired (the kernel says so at most once a window). Two firings in windows in a row can be up to two
// windows apart (one early in its window, the next late in its own): 25 s. With 15 s, a stall near half a window
// could restart the streak at every firing and never kill.
static void thrash_check(struct ctr *c) {
  struct timespec now; clock_gettime(CLOCK_MONOTONIC, &now);
  long long hits = read_num(CGF(c, "/memory.events"), "max");
  int hit = hits > c->psi_hits, next = c->psi_streak && now.tv_sec - c->psi_at <= 25;
  c->psi_streak = hit ? (next ? c->psi_streak + 1 : 1) : 0;
  c->psi_hits = hits; c->psi_at = now.tv_sec;
  // On the console (a test that sees no OOM kill prints it): whether the guard saw the stall at all.
  say("container %u: stalled on memory for 5 s of 10 (%s its limit; streak %d)", c->id, hit ? "at" : "not at", c->psi_streak);
  if (c->psi_streak < 2 || c->thrash_killed) return;
  say("container %u: stalled on memory at its limit for 20 s: killed", c->id);
  c->thrash_killed = 1;
  write_file(CGF(c, "/cgroup.kill"), "1");
}

static void write_exit(struct ctr *c, int code, int oom) {
  char b[64]; int n = snprintf(b, sizeof b, "%d %d\n", code, oom);
  if (c->exitfd >= 0 && write(c->exitfd, b, n) < 0) say("exit record of %u: %s", c->id, strerror(errno));
}

static void poweroff(void) {
  // A pod's other containers go with its VM: killed, as the record each gets says.
  for (int i = MAX_CTRS - 1; i >= 0; i--) {
    struct ctr *c = &ctrs[i];
    if (!c->used) continue;
    if (c->id && c->init_pid && !c->reaped) write_exit(c, 137, 0);
    ctr_down(c);
  }
  sync();
  reboot(RB_POWER_OFF);
  _exit(0);
}

static void finish(struct proc *pr) {
  int st = pr->status, code = WIFEXITED(st) ? WEXITSTATUS(st) : 128 + WTERMSIG(st);
  struct ctr *ct = pr->ct;
  // As docker: any OOM kill in the container, the kernel's or the thrash guard's.
  int oom = read_num(CGF(ct, "/memory.events"), "oom_kill") > 0 || ct->thrash_killed;
  if (pr->init) write_exit(ct, code, oom);
  struct kv k = {.n = 0}; kv_add(&k, "code=%d", code); kv_add(&k, "oom=%d", oom);
  send_frame(OP_EXIT, pr->id, 0, k.buf, k.n);
  int init = pr->init;
  close_proc_fds(pr);
  memset(pr, 0, sizeof *pr); pr->out = pr->err = pr->in = pr->go = pr->fail = -1;
  if (init && ct->id) { // one of a pod's containers: it ends, the VM runs on
    ct->reaped = 1;
    ctr_down(ct);
    return;
  }
  if (init) {
    for (int i = 0; i < 50 && outlen && !ctl_down; i++) { flush_out(); if (outlen) usleep(10000); }
    poweroff();
  }
}

static void reap(void) {
  int st; pid_t pid;
  while ((pid = waitpid(-1, &st, WNOHANG)) > 0) {
    for (int i = 0; i < MAX_PROCS; i++) if (procs[i].pid == pid) { procs[i].exited = 1; procs[i].status = st; }
  }
  for (int i = 0; i < MAX_PROCS; i++) {
    struct proc *pr = &procs[i];
    if (!pr->pid || !pr->exited) continue;
    // Drain what the process left in its pipes or pty before reporting the exit; a full log holds both until the
    // host has rotated it, so its last lines are kept too.
    int held = pr->init && pr->ct && pr->ct->log_held;
    if (!held && pr->out >= 0) pump(pr, pr->out, 1);
    if (!held && pr->err >= 0) pump(pr, pr->err, 2);
    if (pr->init && pr->ct && pr->ct->log_held) continue;
    finish(pr);
  }
}

static void op_stats(uint32_t seq, uint32_t id) {
  struct kv k = {.n = 0};
  struct ctr *c = ctr_get(id, 0);
  if (!c) return fail(seq, "no container %u", id);
  char b[4096]; int fd = open(CGF(c, "/cpu.stat"), O_RDONLY);
  long long usage = read_num(CGF(c, "/cpu.stat"), "usage_usec"), user = read_num(CGF(c, "/cpu.stat"), "user_usec"), sys = read_num(CGF(c, "/cpu.stat"), "system_usec");
  if (fd >= 0) close(fd);
  kv_add(&k, "cpu_usec=%lld", usage); kv_add(&k, "user_usec=%lld", user); kv_add(&k, "system_usec=%lld", sys);
  kv_add(&k, "throttled_periods=%lld", read_num(CGF(c, "/cpu.stat"), "nr_throttled"));
  kv_add(&k, "throttled_usec=%lld", read_num(CGF(c, "/cpu.stat"), "throttled_usec"));
  kv_add(&k, "memory=%lld", read_num(CGF(c, "/memory.current"), NULL));
  kv_add(&k, "memory_peak=%lld", read_num(CGF(c, "/memory.peak"), NULL));
  kv_add(&k, "memory_failcnt=%lld", read_num(CGF(c, "/memory.events"), "max"));
  kv_add(&k, "pids=%lld", read_num(CGF(c, "/pids.current"), NULL));
  kv_add(&k, "io_read=%lld", 0LL); kv_add(&k, "io_write=%lld", 0LL);
  fd = open("/proc/meminfo", O_RDONLY);
  if (fd >= 0) { ssize_t n = read(fd, b, sizeof b - 1); close(fd); if (n > 0) { b[n] = 0; char *m = strstr(b, "MemTotal:"); if (m) kv_add(&k, "mem_total=%lld", strtoll(m + 9, NULL, 10) * 1024); } }
  reply(seq, &k);
}

// One "pid ppid uid rss_bytes cpu_ticks start_ticks comm\targs" line per process of the job cgroup.
static void op_ps(uint32_t seq, uint32_t id) {
  struct kv k = {.n = 0};
  struct ctr *c = ctr_get(id, 0);
  if (!c) return fail(seq, "no container %u", id);
  FILE *f = fopen(CGF(c, "/cgroup.procs"), "r");
  int pid;
  while (f && fscanf(f, "%d", &pid) == 1) {
    char p[64], b[4096], args[2048] = ""; struct stat st;
    snprintf(p, sizeof p, "/proc/%d/stat", pid);
    int fd = open(p, O_RDONLY); if (fd < 0) continue;
    ssize_t n = read(fd, b, sizeof b - 1); close(fd); if (n <= 0) continue; b[n] = 0;
    char *l = strchr(b, '('), *r = strrchr(b, ')'); if (!l || !r) continue;
    *r = 0;
    int ppid; unsigned long ut, stt; long long start, rss;
    if (sscanf(r + 2, "%*c %d %*d %*d %*d %*d %*u %*u %*u %*u %*u %lu %lu %*d %*d %*d %*d %*d %*d %lld %*u %lld", &ppid, &ut, &stt, &start, &rss) != 5) continue;
    snprintf(p, sizeof p, "/proc/%d", pid); stat(p, &st);
    snprintf(p, sizeof p, "/proc/%d/cmdline", pid);
    fd = open(p, O_RDONLY);
    if (fd >= 0) { n = read(fd, args, sizeof args - 1); close(fd); if (n > 0) { for (ssize_t i = 0; i < n - 1; i++) if (!args[i]) args[i] = ' '; args[n] = 0; } }
    kv_add(&k, "%d %d %u %lld %lu %lld %s\t%s", pid, ppid, st.st_uid, rss * 4096, ut + stt, start, l + 1, args);
  }
  if (f) fclose(f);
  reply(seq, &k);
}

static void op_readfile(uint32_t seq, uint32_t id, const char *p, const char *end) {
  char path[4096], b[65536]; size_t n = end - p < 4000 ? (size_t)(end - p) : 4000;
  memcpy(path, p, n); path[n] = 0;
  struct ctr *c = ctr_get(id, 0);
  if (!c || !c->mounted) return send_frame(OP_REPLY, 0, seq, NULL, 0);
  char full[4200]; snprintf(full, sizeof full, "%s%s", c->root, path);
  // Refuse links: the image must not point the agent elsewhere.
  int fd = open(full, O_RDONLY | O_NOFOLLOW | O_CLOEXEC);
  if (fd < 0) return send_frame(OP_REPLY, 0, seq, NULL, 0);
  ssize_t r = read(fd, b, sizeof b); close(fd);
  send_frame(OP_REPLY, 0, seq, b, r > 0 ? r : 0);
}

// One of a pod's containers taken out of the VM (its processes killed, its root unmounted, its ports closed) before
// the host unplugs its disks and ports. A container the guest does not know is no error.
static void op_destroy(uint32_t seq, uint32_t id) {
  struct ctr *c = ctr_get(id, 0);
  if (!id) return fail(seq, "the VM's own container goes with the VM");
  if (!c) return reply(seq, NULL);
  write_file(CGF(c, "/cgroup.kill"), "1");
  for (int t = 0; t < 300; t++) { // its processes' exits reported, at most ~3 s
    int left = 0;
    for (int i = 0; i < MAX_PROCS; i++) if (procs[i].pid && procs[i].ct == c) left++;
    if (!left) break;
    usleep(10000);
    reap();
  }
  for (int i = 0; i < MAX_PROCS; i++) if (procs[i].pid && procs[i].ct == c) { close_proc_fds(&procs[i]); memset(&procs[i], 0, sizeof procs[i]); procs[i].out = procs[i].err = procs[i].in = procs[i].go = procs[i].fail = -1; }
  ctr_down(c);
  if (c->logfd >= 0) close(c->logfd);
  if (c->exitfd >= 0) close(c->exitfd);
  memset(c, 0, sizeof *c);
  reply(seq, NULL);
}

// Code for TCG to translate, `kib` KiB of it, run once by a child process: blocks of `add $1,%eax; jmp` (the next
// block), each its own translation block, then `ret`. The host asks for it when the VM has started and idles with
// TCG's cache still full of its start's code: only a flush of the cache lets the host give the dead part back, and an
// idle guest translates too little to cause one (see jit.ts). The reply comes at once; the child is reaped as any.
static void op_jitfill(uint32_t seq, const char *p, const char *end) {
  const char *key, *val; size_t klen; long kib = 0;
  while ((p = kv_next(p, end, &key, &klen, &val))) if (KEY("kib")) kib = strtol(val, NULL, 10);
  if (kib <= 0 || kib > 4096) return fail(seq, "kib must be 1 to 4096");
  pid_t pid = fork();
  if (pid < 0) return fail(seq, "fork: %s", strerror(errno));
  if (pid == 0) {
    size_t len = (size_t)kib * 1024, blocks = (len - 1) / 5;
    unsigned char *code = mmap(NULL, len, PROT_READ | PROT_WRITE | PROT_EXEC, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    if (code == MAP_FAILED) _exit(1);
    for (size_t i = 0; i < blocks; i++) memcpy(code + 5 * i, "\x83\xc0\x01\xeb\x00", 5);
    code[5 * blocks] = 0xc3;
    ((void (*)(void))code)();
    _exit(0);
  }
  reply(seq, NULL);
}

static void handle(int op, uint32_t id, uint32_t seq, const char *p, size_t n) {
  const char *end = p + n, *key, *val; size_t klen;
  struct proc *pr;
  switch (op) {
  case OP_HELLO:
    send_frame(OP_READY, 0, seq, p, n);
    for (int i = 0; i < MAX_CTRS; i++) if (ctrs[i].used && ctrs[i].log_held) send_frame(OP_LOGFULL, ctrs[i].id, 0, NULL, 0);
    break;
  case OP_LOGROTATED: { // no reply: the host sends it after any rotation, whether the log was held or not
    struct ctr *c = ctr_get(id, 0);
    if (c) { c->logged = 0; c->log_held = 0; }
    break;
  }
  case OP_IDENTITY: op_identity(seq, p, end); break;
  case OP_JITFILL: op_jitfill(seq, p, end); break;
  case OP_ROOT: op_root(seq, id, p, end); break;
  case OP_FILE: op_file(seq, id, p, end); break;
  case OP_NET: op_net(seq, p, end); break;
  case OP_CREATE: op_create(seq, id, p, end); break;
  case OP_START: {
    const char *argv0 = NULL;
    (void)argv0;
    if (!(pr = find_proc(id))) return fail(seq, "no process %u", id);
    const char *q = p; while ((q = kv_next(q, end, &key, &klen, &val))) if (KEY("arg0")) argv0 = val;
    op_start(seq, pr, argv0); break;
  }
  case OP_STDIN:
    if (!(pr = find_proc(id)) || pr->in < 0) break;
    if (n == 0) { if (!pr->tty) { close(pr->in); pr->in = -1; } break; }
    for (size_t off = 0; off < n;) {
      ssize_t w = write(pr->in, p + off, n - off);
      if (w < 0 && errno == EAGAIN) { struct pollfd pf = {pr->in, POLLOUT, 0}; poll(&pf, 1, 100); continue; }
      if (w <= 0) break;
      off += w;
    }
    break;
  case OP_SIGNAL: {
    int sig = SIGTERM, all = 0;
    while ((p = kv_next(p, end, &key, &klen, &val))) { if (KEY("sig")) sig = atoi(val); else if (KEY("all")) all = atoi(val); }
    if (!(pr = find_proc(id))) return fail(seq, "no process %u", id);
    if (all && pr->init && sig == SIGKILL) write_file(CGF(pr->ct, "/cgroup.kill"), "1");
    else if (kill(pr->pid, sig) < 0) return fail(seq, "kill: %s", strerror(errno));
    reply(seq, NULL); break;
  }
  case OP_RESIZE: {
    struct winsize ws = {24, 80, 0, 0};
    while ((p = kv_next(p, end, &key, &klen, &val))) { if (KEY("rows")) ws.ws_row = atoi(val); else if (KEY("cols")) ws.ws_col = atoi(val); }
    if (!(pr = find_proc(id))) return fail(seq, "no process %u", id);
    if (pr->tty) ioctl(pr->out, TIOCSWINSZ, &ws);
    reply(seq, NULL); break;
  }
  case OP_STATS: op_stats(seq, id); break;
  case OP_PS: op_ps(seq, id); break;
  case OP_READFILE: op_readfile(seq, id, p, end); break;
  case OP_DESTROY: op_destroy(seq, id); break;
  case OP_FS: op_fs(seq, id, p, end); break;
  case OP_FWRITE: op_fwrite(seq, p, n); break;
  case OP_POWEROFF: flush_out(); poweroff(); break;
  default: fail(seq, "unknown operation %d", op);
  }
}

static void read_ctl(void) {
  for (;;) {
    ssize_t n = read(ctl, inbuf + inlen, sizeof inbuf - inlen);
    if (n < 0 && errno == EINTR) continue;
    if (n < 0 && errno == EAGAIN) break;
    if (n <= 0) { host_gone(1); return; } // the host went; a new one starts a new stream
    inlen += n;
    size_t off = 0;
    while (inlen - off >= 4) {
      uint32_t len = get32(inbuf + off);
      if (len < 9 || len > MAX_FRAME) { inlen = off = 0; break; } // garbage: resynchronise on the next HELLO
      if (inlen - off < 4 + len) break;
      handle((unsigned char)inbuf[off + 4], get32(inbuf + off + 5), get32(inbuf + off + 9), inbuf + off + 13, len - 9);
      off += 4 + len;
    }
    memmove(inbuf, inbuf + off, inlen - off); inlen -= off;
  }
}

int main(void) {
  mount("devtmpfs", "/dev", "devtmpfs", MS_NOSUID, "mode=0755");
  mount("proc", "/proc", "proc", MS_NOSUID | MS_NODEV | MS_NOEXEC, NULL);
  mount("sysfs", "/sys", "sysfs", MS_NOSUID | MS_NODEV | MS_NOEXEC, NULL);
  mount("tmpfs", "/run", "tmpfs", MS_NOSUID | MS_NODEV, "mode=0755");
  mkdir("/dev/pts", 0755);
  mount("devpts", "/dev/pts", "devpts", MS_NOSUID | MS_NOEXEC, "ptmxmode=0666,mode=0620");
  mount("cgroup2", "/sys/fs/cgroup", "cgroup2", MS_NOSUID | MS_NODEV | MS_NOEXEC, NULL);
  write_file("/sys/fs/cgroup/cgroup.subtree_control", "+memory +pids +cpu");
  load_modules();
  index_boot_disks();
  make_ahead();
  char *lo[] = {"ip", "link", "set", "lo", "up", NULL};
  run_busybox(lo);
  // The guest's network namespace is its containers': it gets what dockerd and containerd set in a container's own,
  // ports below 1024 and ICMP echo sockets open to every user (a VM takes no --sysctl to say otherwise).
  write_file("/proc/sys/net/ipv4/ip_unprivileged_port_start", "0");
  write_file("/proc/sys/net/ipv4/ping_group_range", "0 2147483647");
  pidns_root = open("/proc/self/ns/pid", O_RDONLY | O_CLOEXEC);
  for (int i = 0; i < MAX_PROCS; i++) procs[i].out = procs[i].err = procs[i].in = procs[i].go = procs[i].fail = -1;
  ctl = open_port("silo.ctl"); logfd = open_port("silo.log"); exitfd = open_port("silo.exit");
  if (logfd >= 0) fcntl(logfd, F_SETFL, 0);
  if (exitfd >= 0) fcntl(exitfd, F_SETFL, 0);
  struct ctr *own = &ctrs[0];
  own->used = 1; own->logfd = logfd; own->exitfd = exitfd; own->psi_fd = -1;
  snprintf(own->root, sizeof own->root, "/root"); snprintf(own->run, sizeof own->run, "/run");
  // Its cgroup is made by its root request. Made here instead (so a template holds it) saved ≈15 ms of guest work per
  // start under TCG, nothing measurable end to end, and idle VMs measured 1-2 MiB more (docs/vm.md): not kept.
  snprintf(own->cg, sizeof own->cg, "/sys/fs/cgroup/c");
  if (ctl < 0 || logfd < 0 || exitfd < 0) { say("virtio-serial ports missing"); poweroff(); }
  sigset_t m; sigemptyset(&m); sigaddset(&m, SIGCHLD); sigprocmask(SIG_BLOCK, &m, NULL);
  int sfd = signalfd(-1, &m, SFD_NONBLOCK | SFD_CLOEXEC);
  say("ready");
  for (;;) {
    enum { NPF = 2 + MAX_CTRS + 2 * MAX_PROCS };
    struct pollfd pf[NPF]; struct proc *who[NPF]; int st[NPF]; int n = 0;
    pf[n] = (struct pollfd){sfd, POLLIN, 0}; who[n++] = NULL;
    if (!ctl_down) { pf[n] = (struct pollfd){ctl, POLLIN | (outlen ? POLLOUT : 0), 0}; who[n++] = NULL; }
    int psi0 = n; // the thrash guards' triggers: st = the container's slot
    for (int i = 0; i < MAX_CTRS; i++) if (ctrs[i].used && ctrs[i].psi_fd >= 0) { pf[n] = (struct pollfd){ctrs[i].psi_fd, POLLPRI, 0}; who[n] = NULL; st[n++] = i; }
    int psi1 = n;
    for (int i = 0; i < MAX_PROCS; i++) {
      struct proc *pr = &procs[i];
      if (!pr->pid || pr->exited) continue;
      if (pr->init && pr->ct && pr->ct->log_held) continue; // its output waits in its pipes: the writer blocks
      if (pr->out >= 0) { pf[n] = (struct pollfd){pr->out, POLLIN, 0}; who[n] = pr; st[n++] = 1; }
      if (pr->err >= 0) { pf[n] = (struct pollfd){pr->err, POLLIN, 0}; who[n] = pr; st[n++] = 2; }
    }
    // With no host listening the port reports HUP continuously: look again every 50 ms instead.
    int r = poll(pf, n, ctl_down ? down_poll_ms() : -1);
    if (r < 0 && errno != EINTR) { say("poll: %s", strerror(errno)); usleep(10000); }
    if (ctl_down) {
      struct pollfd c = {ctl, POLLIN, 0};
      if (poll(&c, 1, 0) >= 0 && !(c.revents & POLLHUP)) ctl_down = 0;
    }
    if (r <= 0) continue;
    for (int i = 0; i < n; i++) {
      if (!pf[i].revents) continue;
      if (pf[i].fd == sfd) { struct signalfd_siginfo si; while (read(sfd, &si, sizeof si) > 0) {} continue; }
      if (i >= psi0 && i < psi1) {
        struct ctr *c = &ctrs[st[i]];
        if (pf[i].revents & POLLPRI) thrash_check(c);
        else if (c->psi_fd >= 0) { close(c->psi_fd); c->psi_fd = -1; } // POLLERR: its cgroup went
        continue;
      }
      if (!who[i] && pf[i].fd == ctl) {
        if (pf[i].revents & POLLIN) read_ctl();
        else if (pf[i].revents & (POLLHUP | POLLERR)) host_gone(1);
        if (!ctl_down && (pf[i].revents & POLLOUT)) flush_out();
        continue;
      }
      struct proc *pr = who[i];
      if (!pump(pr, pf[i].fd, st[i])) {
        if (st[i] == 1) { if (pr->in == pr->out) pr->in = -1; close(pr->out); pr->out = -1; }
        else { close(pr->err); pr->err = -1; }
      }
    }
    reap();
    flush_out();
  }
}
