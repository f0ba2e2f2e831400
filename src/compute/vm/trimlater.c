// silo-vm-trimlater.so, preloaded into QEMU by silo-vm-nothp: QEMU's RCU thread calls malloc_trim() after every
// batch of callbacks, ≈1100 times in a clone's first second here. Each call madvises the free pages of every malloc
// arena away (a TLB shootdown across the host's CPUs each time) and the next allocations fault them back in: ≈100 ms
// of a 650 ms start's CPU on this paravirtualised host. This malloc_trim only asks for a trim; a thread of its own runs
// glibc's once no one has asked for a second (or ten seconds after a request, under steady asking), so an idle VM
// gives back what it freed as before, once.
#define _GNU_SOURCE
#include <dlfcn.h>
#include <pthread.h>
#include <stddef.h>
#include <time.h>

static pthread_mutex_t mu = PTHREAD_MUTEX_INITIALIZER;
static pthread_cond_t cv = PTHREAD_COND_INITIALIZER;
static int started, asked;
static size_t asked_pad;
static int (*real_trim)(size_t);

static void *trimmer(void *arg) {
  (void)arg;
  pthread_mutex_lock(&mu);
  for (;;) {
    while (!asked) pthread_cond_wait(&cv, &mu);
    struct timespec first;
    clock_gettime(CLOCK_MONOTONIC, &first);
    for (;;) { // until a quiet second, or ten seconds since the first request
      asked = 0;
      struct timespec until;
      clock_gettime(CLOCK_MONOTONIC, &until);
      until.tv_sec += 1;
      int rc = 0;
      while (!asked && rc == 0) rc = pthread_cond_timedwait(&cv, &mu, &until);
      if (!asked || until.tv_sec - first.tv_sec >= 10) break;
    }
    asked = 0;
    size_t pad = asked_pad;
    pthread_mutex_unlock(&mu);
    real_trim(pad);
    pthread_mutex_lock(&mu);
  }
  return NULL;
}

// QEMU daemonizes by forking: the trimmer thread does not cross a fork, so the child starts its own when first asked.
static void after_fork(void) {
  pthread_mutex_init(&mu, NULL);
  pthread_cond_init(&cv, NULL);
  started = asked = 0;
}

__attribute__((constructor)) static void init(void) {
  pthread_atfork(NULL, NULL, after_fork);
}

int malloc_trim(size_t pad) {
  pthread_mutex_lock(&mu);
  if (!started) {
    pthread_condattr_t ca;
    pthread_condattr_init(&ca);
    pthread_condattr_setclock(&ca, CLOCK_MONOTONIC);
    pthread_cond_init(&cv, &ca);
    real_trim = (int (*)(size_t))dlsym(RTLD_NEXT, "malloc_trim");
    pthread_attr_t a;
    pthread_attr_init(&a);
    pthread_attr_setdetachstate(&a, PTHREAD_CREATE_DETACHED);
    pthread_attr_setstacksize(&a, 64 * 1024);
    pthread_t t;
    started = real_trim && pthread_create(&t, &a, trimmer, NULL) == 0;
    pthread_attr_destroy(&a);
    if (!started) { // no thread: trim now, as without this library
      pthread_mutex_unlock(&mu);
      return real_trim ? real_trim(pad) : 0;
    }
  }
  asked = 1;
  asked_pad = pad;
  pthread_cond_signal(&cv);
  pthread_mutex_unlock(&mu);
  return 0;
}
