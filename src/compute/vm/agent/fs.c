// The files of a container's root for the host's copies (docker cp, a build's COPY), one filesystem call per request
// (op FS; FWRITE carries file data). Included by agent.c. Every path is resolved inside the container's root with
// openat2(RESOLVE_IN_ROOT): a symlink of the container, even one swapped in meanwhile, leads only elsewhere inside it,
// never onto the guest's own files; a final component is never followed (the host resolves links itself, within
// the root). The container keeps running: nothing is paused or frozen. Nothing of the container is ever executed.
//
// FS payload: "key=value" strings, `do` the call, `path` a clean absolute container path; `own=1` asks for the root as
// its filesystem holds it, without what is mounted on it (docker export). Answers are REPLY strings (`read`: raw
// bytes), failures ERROR "errno=<n>".
#include <linux/openat2.h>

#ifndef SYS_open_tree
#define SYS_open_tree 428
#endif
#ifndef OPEN_TREE_CLONE
#define OPEN_TREE_CLONE 1
#endif

#define FS_HANDLES 16
#define FS_CHUNK (512 * 1024)
// Open files of copies in progress: fd + 1 (0 = free) and their container, closed when the host goes or the
// container's root comes down.
static struct { int fd1; struct ctr *ct; } fsh[FS_HANDLES];

static void fs_close_all(struct ctr *c) {
  for (int i = 0; i < FS_HANDLES; i++)
    if (fsh[i].fd1 && (!c || fsh[i].ct == c)) { close(fsh[i].fd1 - 1); fsh[i].fd1 = 0; fsh[i].ct = NULL; }
}

static int fs_root(struct ctr *c, int own) {
  if (!own) return open(c->root, O_PATH | O_DIRECTORY | O_CLOEXEC);
  // A detached copy of the overlay's mount alone: /proc, /dev, /sys and the bound files are not in it.
  return (int)syscall(SYS_open_tree, AT_FDCWD, c->root, OPEN_TREE_CLONE | O_CLOEXEC);
}

static int fs_in(int root, const char *path, int flags) {
  struct open_how how = {.flags = (uint64_t)(flags | O_CLOEXEC), .resolve = RESOLVE_IN_ROOT | RESOLVE_NO_MAGICLINKS};
  return (int)syscall(SYS_openat2, root, path, &how, sizeof how);
}

// The parent directory of `path` opened inside the root; `name` gets the final component.
static int fs_parent(int root, const char *path, char *name, size_t n) {
  const char *slash = strrchr(path, '/');
  if (path[0] != '/' || !slash || !slash[1] || !strcmp(slash + 1, ".") || !strcmp(slash + 1, "..") || strlen(slash + 1) >= n) { errno = EINVAL; return -1; }
  snprintf(name, n, "%s", slash + 1);
  char dir[4096]; size_t dl = slash - path;
  if (dl >= sizeof dir) { errno = ENAMETOOLONG; return -1; }
  memcpy(dir, path, dl); dir[dl] = 0;
  return fs_in(root, dl ? dir : "/", O_PATH | O_DIRECTORY);
}

static int fs_rmtree(int dfd, const char *name) {
  if (unlinkat(dfd, name, 0) == 0) return 0;
  if (errno != EISDIR && errno != EPERM) return -1;
  int fd = openat(dfd, name, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
  if (fd < 0) return -1;
  DIR *d = fdopendir(fd);
  if (!d) { close(fd); return -1; }
  struct dirent *e;
  while ((e = readdir(d))) {
    if (!strcmp(e->d_name, ".") || !strcmp(e->d_name, "..")) continue;
    if (fs_rmtree(fd, e->d_name) < 0 && errno != ENOENT) { int s = errno; closedir(d); errno = s; return -1; }
  }
  closedir(d);
  return unlinkat(dfd, name, AT_REMOVEDIR);
}

static void fs_stat_reply(uint32_t seq, const struct stat *s) {
  struct kv k = {.n = 0};
  kv_add(&k, "st=%u %u %u %lld %llu %llu %llu %llu %lld %lld %lld.%09ld %lld.%09ld %lld.%09ld", s->st_mode, s->st_uid, s->st_gid,
         (long long)s->st_size, (unsigned long long)s->st_ino, (unsigned long long)s->st_nlink, (unsigned long long)s->st_dev,
         (unsigned long long)s->st_rdev, (long long)s->st_blocks, (long long)s->st_blksize,
         (long long)s->st_atim.tv_sec, s->st_atim.tv_nsec, (long long)s->st_mtim.tv_sec, s->st_mtim.tv_nsec,
         (long long)s->st_ctim.tv_sec, s->st_ctim.tv_nsec);
  reply(seq, &k);
}

static int fs_handle(const char *v) {
  long h = strtol(v ? v : "-1", NULL, 10);
  if (h < 0 || h >= FS_HANDLES || !fsh[h].fd1) { errno = EBADF; return -1; }
  return fsh[h].fd1 - 1;
}

static void fs_new_handle(uint32_t seq, struct ctr *c, int fd) {
  for (int i = 0; i < FS_HANDLES; i++) {
    if (fsh[i].fd1) continue;
    fsh[i].fd1 = fd + 1; fsh[i].ct = c;
    struct kv k = {.n = 0}; kv_add(&k, "h=%d", i); return reply(seq, &k);
  }
  close(fd);
  fail(seq, "errno=%d", EMFILE);
}

static void op_fs(uint32_t seq, uint32_t id, const char *p, const char *end) {
  const char *key, *val; size_t klen;
  const char *what = "", *path = NULL, *path2 = NULL, *target = NULL, *h = NULL;
  long long mode = 0, uid = 0, gid = 0, n = 0, sec = 0, nsec = 0; int own = 0;
  while ((p = kv_next(p, end, &key, &klen, &val))) {
    if (KEY("do")) what = val; else if (KEY("path")) path = val; else if (KEY("path2")) path2 = val;
    else if (KEY("target")) target = val; else if (KEY("h")) h = val; else if (KEY("own")) own = atoi(val);
    else if (KEY("mode")) mode = strtoll(val, NULL, 8); else if (KEY("uid")) uid = strtoll(val, NULL, 10);
    else if (KEY("gid")) gid = strtoll(val, NULL, 10); else if (KEY("n")) n = strtoll(val, NULL, 10);
    else if (KEY("sec")) sec = strtoll(val, NULL, 10); else if (KEY("nsec")) nsec = strtoll(val, NULL, 10);
  }
  struct stat st; int fd, rc = -1;
  // Calls on an open file first: they need no root.
  if (h) {
    if ((fd = fs_handle(h)) < 0) return fail(seq, "errno=%d", errno);
    if (!strcmp(what, "read")) {
      static char buf[FS_CHUNK];
      ssize_t r = read(fd, buf, n > 0 && n < FS_CHUNK ? (size_t)n : FS_CHUNK);
      if (r < 0) return fail(seq, "errno=%d", errno);
      return send_frame(OP_REPLY, 0, seq, buf, r);
    }
    if (!strcmp(what, "fstat")) { if (fstat(fd, &st) < 0) return fail(seq, "errno=%d", errno); return fs_stat_reply(seq, &st); }
    if (!strcmp(what, "close")) { fsh[atoi(h)].fd1 = 0; fsh[atoi(h)].ct = NULL; rc = close(fd); }
    else if (!strcmp(what, "fchown")) rc = fchown(fd, uid, gid);
    else if (!strcmp(what, "fchmod")) rc = fchmod(fd, mode);
    else if (!strcmp(what, "futimes")) { struct timespec ts[2] = {{sec, nsec}, {sec, nsec}}; rc = futimens(fd, ts); }
    else { errno = EINVAL; rc = -1; }
    if (rc < 0) return fail(seq, "errno=%d", errno);
    return reply(seq, NULL);
  }
  struct ctr *c = ctr_get(id, 0);
  if (!c || !c->mounted) return fail(seq, "errno=%d", ESRCH);
  if (!path) return fail(seq, "errno=%d", EINVAL);
  int root = fs_root(c, own);
  if (root < 0) return fail(seq, "errno=%d", errno);
  char name[256], name2[256];
  int dfd = -1, dfd2 = -1, e = 0;
  // The root itself and whole directories: opened as such, the last component not followed.
  if (!strcmp(what, "lstat") && !strcmp(path, "/")) { rc = fstat(root, &st); if (rc == 0) { close(root); return fs_stat_reply(seq, &st); } goto out; }
  if (!strcmp(what, "readdir")) {
    static char names[MAX_FRAME - 64]; size_t len = 0;
    if ((fd = fs_in(root, path, O_RDONLY | O_DIRECTORY | O_NOFOLLOW)) < 0) goto out;
    DIR *d = fdopendir(fd); struct dirent *de;
    if (!d) { e = errno; close(fd); errno = e; goto out; }
    while ((de = readdir(d))) {
      size_t l = strlen(de->d_name);
      if (!strcmp(de->d_name, ".") || !strcmp(de->d_name, "..")) continue;
      if (len + l + 6 > sizeof names) { closedir(d); errno = E2BIG; goto out; }
      memcpy(names + len, "name=", 5); memcpy(names + len + 5, de->d_name, l + 1); len += l + 6;
    }
    closedir(d); close(root);
    return send_frame(OP_REPLY, 0, seq, names, len);
  }
  if ((dfd = fs_parent(root, path, name, sizeof name)) < 0) goto out;
  if (!strcmp(what, "lstat")) {
    if ((rc = fstatat(dfd, name, &st, AT_SYMLINK_NOFOLLOW)) == 0) { close(dfd); close(root); return fs_stat_reply(seq, &st); }
  } else if (!strcmp(what, "readlink")) {
    char t[4096]; ssize_t r = readlinkat(dfd, name, t, sizeof t - 1);
    if (r >= 0) { t[r] = 0; struct kv k = {.n = 0}; kv_add(&k, "target=%s", t); close(dfd); close(root); return reply(seq, &k); }
  } else if (!strcmp(what, "open") || !strcmp(what, "create")) {
    int cr = !strcmp(what, "create");
    // Never a FIFO's or a device's open that would block the agent: O_NONBLOCK, and only regular files are read.
    fd = openat(dfd, name, cr ? O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC : O_RDONLY | O_NOFOLLOW | O_NONBLOCK | O_CLOEXEC, (mode_t)mode);
    if (fd >= 0 && !cr && (fstat(fd, &st) < 0 || !S_ISREG(st.st_mode))) { close(fd); fd = -1; errno = EINVAL; }
    if (fd >= 0) { close(dfd); close(root); return fs_new_handle(seq, c, fd); }
  } else if (!strcmp(what, "mkdir")) rc = mkdirat(dfd, name, mode);
  else if (!strcmp(what, "chmoddir")) {
    if ((fd = openat(dfd, name, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC)) >= 0) { rc = fchmod(fd, mode); e = errno; close(fd); errno = e; }
  } else if (!strcmp(what, "lchown")) rc = fchownat(dfd, name, uid, gid, AT_SYMLINK_NOFOLLOW);
  else if (!strcmp(what, "symlink")) rc = target ? symlinkat(target, dfd, name) : (errno = EINVAL, -1);
  else if (!strcmp(what, "lutimes")) { struct timespec ts[2] = {{sec, nsec}, {sec, nsec}}; rc = utimensat(dfd, name, ts, AT_SYMLINK_NOFOLLOW); }
  else if (!strcmp(what, "remove")) rc = fs_rmtree(dfd, name);
  else if (!strcmp(what, "link")) { // a hard link at path2 to path, which is not followed
    if (path2 && (dfd2 = fs_parent(root, path2, name2, sizeof name2)) >= 0) rc = linkat(dfd, name, dfd2, name2, 0);
    else if (!path2) errno = EINVAL;
  } else errno = EINVAL;
out:
  e = errno;
  if (dfd >= 0) close(dfd);
  if (dfd2 >= 0) close(dfd2);
  close(root);
  if (rc < 0) return fail(seq, "errno=%d", e);
  reply(seq, NULL);
}

// FWRITE: u32 handle | u64 offset | bytes, written whole at that offset; REPLY "n=<bytes>".
static void op_fwrite(uint32_t seq, const char *p, size_t n) {
  if (n < 12) return fail(seq, "errno=%d", EINVAL);
  char hs[16]; snprintf(hs, sizeof hs, "%u", get32(p));
  int fd = fs_handle(hs);
  if (fd < 0) return fail(seq, "errno=%d", errno);
  off_t off = (off_t)((uint64_t)get32(p + 4) | (uint64_t)get32(p + 8) << 32);
  size_t done = 0;
  while (done < n - 12) {
    ssize_t w = pwrite(fd, p + 12 + done, n - 12 - done, off + done);
    if (w < 0 && errno == EINTR) continue;
    if (w <= 0) return fail(seq, "errno=%d", w < 0 ? errno : EIO);
    done += w;
  }
  struct kv k = {.n = 0}; kv_add(&k, "n=%zu", done); reply(seq, &k);
}
