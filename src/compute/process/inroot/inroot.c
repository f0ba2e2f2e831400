// silo-inroot: resolves paths inside a running container's root for the daemon's copies (docker cp, build COPY), so
// no process inside can lead a copy out of the container by swapping a path component for a symlink (CVE-2018-15664)
// and the container need not be paused; and mounts a volume's subpath (docker's volume-subpath) from the fd it
// resolved inside the volume, so no symlink swapped in after a check can lead the mount out of it. The root is the container's own view (/proc/<pid>/root: its mounts,
// volumes included); every lookup is openat2(RESOLVE_IN_ROOT): symlinks and ".." resolve inside that root. The
// daemon then reaches what it asked for through /proc/<this pid>/fd/<n>, and names only single final components
// below such a directory, never following them. Nothing of the container is ever executed.
//
// Requests on stdin, one per line, fields separated by one space, paths hex-encoded; one answer line each:
//   O <hexpath> <nofollow 0|1> <dir 0|1>     open O_PATH        -> "ok <fd>" | "err <errno>"
//   C <fd>                                     close              -> "ok 0"
//   R <fd> <hexname>                           remove name below fd, recursively, never following a symlink
//   L <fd> <hexname> <fd2> <hexname2>          hard link fd/name as fd2/name2 (no symlink followed)
//   M <fd> <hextarget>                         bind-mount what fd names at the host path target (a volume's subpath:
//                                              the mount is of the object resolved, not of a path looked up again)
//   U <hextarget>                              detach the mount at target

#define _GNU_SOURCE
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <linux/openat2.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mount.h>
#include <sys/syscall.h>
#include <unistd.h>

static int rootfd = -1;

static int unhex(const char *h, char *out, size_t cap) {
  size_t n = strlen(h);
  if (n % 2 || n / 2 >= cap) return -1;
  for (size_t i = 0; i < n / 2; i++) {
    unsigned v;
    if (sscanf(h + 2 * i, "%2x", &v) != 1) return -1;
    out[i] = (char)v;
    if (!out[i]) return -1;
  }
  out[n / 2] = 0;
  return 0;
}

static int rmtree(int dfd, const char *name) {
  if (unlinkat(dfd, name, 0) == 0) return 0;
  if (errno != EISDIR && errno != EPERM) return -1;
  int fd = openat(dfd, name, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
  if (fd < 0) return -1;
  DIR *d = fdopendir(fd);
  if (!d) {
    close(fd);
    return -1;
  }
  struct dirent *e;
  while ((e = readdir(d))) {
    if (!strcmp(e->d_name, ".") || !strcmp(e->d_name, "..")) continue;
    if (rmtree(fd, e->d_name) < 0 && errno != ENOENT) {
      int saved = errno;
      closedir(d);
      errno = saved;
      return -1;
    }
  }
  closedir(d);
  return unlinkat(dfd, name, AT_REMOVEDIR);
}

static void answer(int rc) {
  if (rc < 0) printf("err %d\n", errno);
  else printf("ok %d\n", rc);
  fflush(stdout);
}

int main(int argc, char **argv) {
  if (argc != 2) {
    fprintf(stderr, "usage: silo-inroot <root directory>\n");
    return 2;
  }
  rootfd = open(argv[1], O_PATH | O_DIRECTORY | O_CLOEXEC);
  if (rootfd < 0) {
    fprintf(stderr, "silo-inroot: %s: %s\n", argv[1], strerror(errno));
    return 1;
  }
  printf("ready %d\n", (int)getpid());
  fflush(stdout);
  static char line[16384], a[8192], b[8192];
  while (fgets(line, sizeof line, stdin)) {
    char op = line[0];
    line[strcspn(line, "\n")] = 0;
    if (op == 'O') {
      char hex[16384];
      int nofollow, dir;
      if (sscanf(line + 2, "%16383s %d %d", hex, &nofollow, &dir) != 3 || unhex(hex, a, sizeof a) < 0) {
        errno = EINVAL;
        answer(-1);
        continue;
      }
      struct open_how how = {
        .flags = O_PATH | O_CLOEXEC | (nofollow ? O_NOFOLLOW : 0) | (dir ? O_DIRECTORY : 0),
        .resolve = RESOLVE_IN_ROOT | RESOLVE_NO_MAGICLINKS,
      };
      answer((int)syscall(SYS_openat2, rootfd, a, &how, sizeof how));
    } else if (op == 'C') {
      answer(close(atoi(line + 2)) < 0 ? -1 : 0);
    } else if (op == 'R') {
      int fd;
      char hex[16384];
      if (sscanf(line + 2, "%d %16383s", &fd, hex) != 2 || unhex(hex, a, sizeof a) < 0 || strchr(a, '/')) {
        errno = EINVAL;
        answer(-1);
        continue;
      }
      answer(rmtree(fd, a) < 0 ? -1 : 0);
    } else if (op == 'L') {
      int fd1, fd2;
      char h1[8192], h2[8192];
      if (sscanf(line + 2, "%d %8191s %d %8191s", &fd1, h1, &fd2, h2) != 4 || unhex(h1, a, sizeof a) < 0 || unhex(h2, b, sizeof b) < 0 ||
          strchr(a, '/') || strchr(b, '/')) {
        errno = EINVAL;
        answer(-1);
        continue;
      }
      answer(linkat(fd1, a, fd2, b, 0) < 0 ? -1 : 0);
    } else if (op == 'M') {
      int fd;
      char hex[16384], src[64];
      if (sscanf(line + 2, "%d %16383s", &fd, hex) != 2 || unhex(hex, a, sizeof a) < 0 || a[0] != '/') {
        errno = EINVAL;
        answer(-1);
        continue;
      }
      snprintf(src, sizeof src, "/proc/self/fd/%d", fd);
      answer(mount(src, a, NULL, MS_BIND, NULL) < 0 ? -1 : 0);
    } else if (op == 'U') {
      char hex[16384];
      if (sscanf(line + 2, "%16383s", hex) != 1 || unhex(hex, a, sizeof a) < 0 || a[0] != '/') {
        errno = EINVAL;
        answer(-1);
        continue;
      }
      answer(umount2(a, MNT_DETACH | UMOUNT_NOFOLLOW) < 0 ? -1 : 0);
    } else {
      errno = EINVAL;
      answer(-1);
    }
  }
  return 0;
}
