// silo-vm-nothp PROGRAM ARGS...: run PROGRAM with transparent huge pages off for it (PR_SET_THP_DISABLE, which an
// exec keeps). QEMU asks for huge pages on every RAM block it allocates; its ACPI tables' block is 2 MiB long but
// holds a few pages, so a huge page there costs each VM ≈2 MiB of host memory for ≈12 KiB of tables.
#include <stdio.h>
#include <sys/prctl.h>
#include <unistd.h>

int main(int argc, char **argv) {
  if (argc < 2) {
    fprintf(stderr, "usage: silo-vm-nothp PROGRAM ARGS...\n");
    return 125;
  }
  if (prctl(PR_SET_THP_DISABLE, 1, 0, 0, 0) != 0) perror("silo-vm-nothp: prctl"); // then with huge pages, as before
  execv(argv[1], argv + 1);
  perror("silo-vm-nothp: exec");
  return 127;
}
