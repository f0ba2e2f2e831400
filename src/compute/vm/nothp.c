// silo-vm-nothp PROGRAM ARGS...: run PROGRAM (QEMU) with transparent huge pages off for it (PR_SET_THP_DISABLE,
// which an exec keeps) and silo-vm-trimlater.so preloaded when it sits beside this program (trimlater.c). QEMU asks
// for huge pages on every RAM block it allocates; its ACPI tables' block is 2 MiB long but holds a few pages, so a
// huge page there costs each VM ≈2 MiB of host memory for ≈12 KiB of tables.
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <unistd.h>

int main(int argc, char **argv) {
  if (argc < 2) {
    fprintf(stderr, "usage: silo-vm-nothp PROGRAM ARGS...\n");
    return 125;
  }
  if (prctl(PR_SET_THP_DISABLE, 1, 0, 0, 0) != 0) perror("silo-vm-nothp: prctl"); // then with huge pages, as before
  char lib[PATH_MAX];
  ssize_t n = readlink("/proc/self/exe", lib, sizeof lib - 32);
  if (n > 0) {
    lib[n] = 0;
    char *slash = strrchr(lib, '/');
    if (slash) {
      strcpy(slash + 1, "silo-vm-trimlater.so");
      if (access(lib, R_OK) == 0) setenv("LD_PRELOAD", lib, 1);
    }
  }
  execv(argv[1], argv + 1);
  perror("silo-vm-nothp: exec");
  return 127;
}
