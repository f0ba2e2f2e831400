// The default seccomp profile: deny (EPERM) everything except an allowlist of what ordinary programs use.
// Our own list, grouped by purpose so a reviewer can see why each syscall is allowed. Names libseccomp does not
// know for an architecture are ignored by runc, so 32-bit-only names can sit next to 64-bit ones.

export interface SeccompRule {
  names: string[];
  action: 'SCMP_ACT_ALLOW' | 'SCMP_ACT_ERRNO';
  errnoRet?: number;
  args?: { index: number; value: number; valueTwo: number; op: string }[];
}

export interface SeccompProfile {
  defaultAction: 'SCMP_ACT_ERRNO';
  defaultErrnoRet: number;
  architectures: string[];
  syscalls: SeccompRule[];
}

const EPERM = 1;
const ENOSYS = 38;

/** Flags that would create namespaces; clone is allowed only when none is set. */
export const CLONE_NAMESPACE_FLAGS =
  0x00020000 /* NEWNS */ | 0x02000000 /* NEWCGROUP */ | 0x04000000 /* NEWUTS */ | 0x08000000 /* NEWIPC */ |
  0x10000000 /* NEWUSER */ | 0x20000000 /* NEWPID */ | 0x40000000; /* NEWNET */

const GROUPS: Record<string, string[]> = {
  // Files and descriptors.
  files: [
    'read', 'write', 'open', 'openat', 'openat2', 'close', 'close_range', 'creat', 'lseek', '_llseek',
    'pread64', 'pwrite64', 'readv', 'writev', 'preadv', 'pwritev', 'preadv2', 'pwritev2',
    'stat', 'fstat', 'lstat', 'newfstatat', 'statx', 'stat64', 'fstat64', 'lstat64', 'fstatat64',
    'statfs', 'fstatfs', 'statfs64', 'fstatfs64', 'access', 'faccessat', 'faccessat2',
    'dup', 'dup2', 'dup3', 'fcntl', 'fcntl64', 'flock', 'ioctl', 'fsync', 'fdatasync', 'sync', 'syncfs',
    'sync_file_range', 'truncate', 'ftruncate', 'truncate64', 'ftruncate64', 'fallocate', 'fadvise64',
    'fadvise64_64', 'readahead', 'getdents', 'getdents64', 'getcwd', 'chdir', 'fchdir', 'chroot',
    'rename', 'renameat', 'renameat2', 'mkdir', 'mkdirat', 'rmdir', 'link', 'linkat', 'unlink', 'unlinkat',
    'symlink', 'symlinkat', 'readlink', 'readlinkat', 'chmod', 'fchmod', 'fchmodat', 'fchmodat2',
    'chown', 'fchown', 'lchown', 'fchownat', 'chown32', 'fchown32', 'lchown32', 'umask',
    'mknod', 'mknodat', 'utime', 'utimes', 'utimensat', 'futimesat', 'utimensat_time64',
    'setxattr', 'lsetxattr', 'fsetxattr', 'getxattr', 'lgetxattr', 'fgetxattr', 'listxattr', 'llistxattr',
    'flistxattr', 'removexattr', 'lremovexattr', 'fremovexattr',
    'sendfile', 'sendfile64', 'splice', 'tee', 'vmsplice', 'copy_file_range',
    'pipe', 'pipe2', 'memfd_create', 'eventfd', 'eventfd2', 'signalfd', 'signalfd4',
    'inotify_init', 'inotify_init1', 'inotify_add_watch', 'inotify_rm_watch',
  ],
  // Waiting for I/O.
  poll: [
    'poll', 'ppoll', 'ppoll_time64', 'select', '_newselect', 'pselect6', 'pselect6_time64',
    'epoll_create', 'epoll_create1', 'epoll_ctl', 'epoll_wait', 'epoll_pwait', 'epoll_pwait2',
  ],
  // Asynchronous I/O (io_uring stays denied: a large kernel attack surface, as docker decided).
  aio: ['io_setup', 'io_destroy', 'io_getevents', 'io_pgetevents', 'io_pgetevents_time64', 'io_submit', 'io_cancel'],
  // Memory.
  memory: [
    'brk', 'mmap', 'mmap2', 'munmap', 'mprotect', 'mremap', 'msync', 'mincore', 'madvise',
    'mlock', 'mlock2', 'munlock', 'mlockall', 'munlockall', 'mbind', 'get_mempolicy', 'set_mempolicy',
    'membarrier', 'remap_file_pages', 'pkey_alloc', 'pkey_free', 'pkey_mprotect', 'map_shadow_stack',
  ],
  // Processes and threads (clone has its own rule below).
  process: [
    'fork', 'vfork', 'execve', 'execveat', 'exit', 'exit_group', 'wait4', 'waitid', 'waitpid',
    'getpid', 'getppid', 'gettid', 'getpgrp', 'getpgid', 'setpgid', 'getsid', 'setsid',
    'set_tid_address', 'set_robust_list', 'get_robust_list', 'futex', 'futex_time64', 'futex_waitv',
    'futex_wait', 'futex_wake', 'futex_requeue', 'rseq', 'restart_syscall', 'arch_prctl', 'prctl',
    'set_thread_area', 'get_thread_area', 'uname', 'getcpu', 'sched_yield', 'sched_getaffinity',
    'sched_setaffinity', 'sched_getparam', 'sched_setparam', 'sched_getscheduler', 'sched_setscheduler',
    'sched_get_priority_max', 'sched_get_priority_min', 'sched_rr_get_interval', 'sched_rr_get_interval_time64',
    'sched_getattr', 'sched_setattr', 'getpriority', 'setpriority', 'ioprio_get', 'ioprio_set',
    'getrlimit', 'ugetrlimit', 'setrlimit', 'prlimit64', 'getrusage', 'sysinfo', 'times',
    'pidfd_open', 'pidfd_send_signal', 'pidfd_getfd', 'capget', 'capset', 'seccomp',
    // Debugging own children is harmless since kernel 4.8 (seccomp is re-checked after ptrace).
    'ptrace', 'process_vm_readv', 'process_vm_writev',
  ],
  // Identity.
  identity: [
    'getuid', 'getgid', 'geteuid', 'getegid', 'setuid', 'setgid', 'setreuid', 'setregid', 'setresuid',
    'getresuid', 'setresgid', 'getresgid', 'getgroups', 'setgroups', 'setfsuid', 'setfsgid',
    'getuid32', 'getgid32', 'geteuid32', 'getegid32', 'setuid32', 'setgid32', 'setreuid32', 'setregid32',
    'setresuid32', 'getresuid32', 'setresgid32', 'getresgid32', 'getgroups32', 'setgroups32',
    'setfsuid32', 'setfsgid32',
  ],
  // Signals.
  signals: [
    'kill', 'tkill', 'tgkill', 'rt_sigaction', 'rt_sigprocmask', 'rt_sigreturn', 'rt_sigpending',
    'rt_sigtimedwait', 'rt_sigtimedwait_time64', 'rt_sigqueueinfo', 'rt_tgsigqueueinfo', 'rt_sigsuspend',
    'sigaltstack', 'sigaction', 'sigprocmask', 'sigreturn', 'sigsuspend', 'signal', 'pause',
  ],
  // Time and timers (setting the clock stays denied).
  time: [
    'time', 'gettimeofday', 'clock_gettime', 'clock_gettime64', 'clock_getres', 'clock_getres_time64',
    'clock_nanosleep', 'clock_nanosleep_time64', 'nanosleep', 'alarm', 'getitimer', 'setitimer',
    'timer_create', 'timer_delete', 'timer_getoverrun', 'timer_gettime', 'timer_settime',
    'timer_gettime64', 'timer_settime64', 'timerfd_create', 'timerfd_gettime', 'timerfd_settime',
    'timerfd_gettime64', 'timerfd_settime64',
  ],
  // Sockets.
  network: [
    'socket', 'socketpair', 'socketcall', 'connect', 'accept', 'accept4', 'bind', 'listen', 'shutdown',
    'getsockname', 'getpeername', 'setsockopt', 'getsockopt', 'sendto', 'recvfrom', 'sendmsg', 'recvmsg',
    'sendmmsg', 'recvmmsg', 'recvmmsg_time64', 'send', 'recv',
  ],
  // System V and POSIX IPC (private to the container's ipc namespace).
  ipc: [
    'shmget', 'shmat', 'shmdt', 'shmctl', 'semget', 'semop', 'semctl', 'semtimedop', 'semtimedop_time64',
    'msgget', 'msgsnd', 'msgrcv', 'msgctl', 'ipc', 'mq_open', 'mq_unlink', 'mq_timedsend', 'mq_timedreceive',
    'mq_timedsend_time64', 'mq_timedreceive_time64', 'mq_notify', 'mq_getsetattr',
  ],
  misc: ['getrandom'],
};

/** personality(2) values that do not weaken the sandbox: Linux, 32-bit, UNAME26, and the query value. */
const PERSONALITIES = [0x0, 0x8, 0x20000, 0x20008, 0xffffffff];

/** Everything the profile allows unconditionally; exported for tests. */
export const ALLOWED_SYSCALLS: readonly string[] = Object.values(GROUPS).flat();

export function defaultSeccompProfile(): SeccompProfile {
  const syscalls: SeccompRule[] = [{ names: [...ALLOWED_SYSCALLS], action: 'SCMP_ACT_ALLOW' }];
  // clone without namespace flags only (x86: flags are the first argument).
  syscalls.push({
    names: ['clone'],
    action: 'SCMP_ACT_ALLOW',
    args: [{ index: 0, value: CLONE_NAMESPACE_FLAGS, valueTwo: 0, op: 'SCMP_CMP_MASKED_EQ' }],
  });
  // clone3 passes flags in a struct seccomp cannot see: answer ENOSYS so libc falls back to clone.
  syscalls.push({ names: ['clone3'], action: 'SCMP_ACT_ERRNO', errnoRet: ENOSYS });
  for (const p of PERSONALITIES) {
    syscalls.push({ names: ['personality'], action: 'SCMP_ACT_ALLOW', args: [{ index: 0, value: p, valueTwo: 0, op: 'SCMP_CMP_EQ' }] });
  }
  return {
    defaultAction: 'SCMP_ACT_ERRNO',
    defaultErrnoRet: EPERM,
    architectures: ['SCMP_ARCH_X86_64', 'SCMP_ARCH_X86', 'SCMP_ARCH_X32'],
    syscalls,
  };
}
