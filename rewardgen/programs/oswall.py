"""The sandbox's operating-system wall: what holds even when Python itself is subverted.

:func:`confine` runs inside the sandbox worker after its imports and before the untrusted
program's first line. In this order, it:

1. gives up the network (and, with it, mount changes): a new network and mount namespace, made
   directly when the worker runs as root, inside a new user namespace otherwise (where the kernel
   allows one; the system-call filter below refuses sockets either way);
2. when the worker runs as root, switches to an unprivileged user (``nobody``; no supplementary
   groups), so that file permissions, ``/proc`` of other processes and signals to them bind it;
3. sets no-new-privs (no setuid binary or file capability can raise it again) and a parent-death
   signal (the worker dies with the process that started it);
4. installs a seccomp filter through libseccomp (``libseccomp.so.2``, which ships with the OS).
   It ends the process (``SIGSYS``, which the runner reports as the filter's refusal) at process
   creation (fork, vfork, clone other than a thread, execve), sockets, ptrace and reading or
   signalling other processes, namespaces, mounts, kernel modules, io_uring (which would bypass
   the filter), bpf, keyrings and changes of user; it fails with ``EPERM`` (so Python names the
   path) opening a file for writing and every call that creates, removes, renames or changes a
   file.

Nothing here is Python-specific: a program that escaped every Python-level check (through
``ctypes``, say) still meets the kernel's refusal.
"""

from __future__ import annotations

import ctypes
import errno
import os
import signal
import sys
from typing import Any

__all__ = ["OSWallError", "confine", "refused_syscalls"]

_CLONE_NEWNS = 0x00020000
_CLONE_NEWUSER = 0x10000000
_CLONE_NEWNET = 0x40000000
_CLONE_THREAD = 0x00010000
_PR_SET_PDEATHSIG = 1
_PR_SET_NO_NEW_PRIVS = 38
_TIOCSTI = 0x5412  # push a character into a terminal's input: a classic way out of a sandbox

_ALLOW = 0x7FFF0000
_KILL_PROCESS = 0x80000000
_CMP_NE, _CMP_MASKED_EQ = 1, 7


def _errno_action(code: int) -> int:
    return 0x00050000 | (code & 0xFFFF)


class OSWallError(RuntimeError):
    """The operating-system wall could not be built (the worker then refuses to run the program)."""


class _ArgCmp(ctypes.Structure):
    _fields_ = [
        ("arg", ctypes.c_uint),
        ("op", ctypes.c_int),
        ("datum_a", ctypes.c_uint64),
        ("datum_b", ctypes.c_uint64),
    ]


#: Refused outright, grouped by what they would let a program do. The file calls fail with
#: EPERM; the others end the process.
_FILES = "create, change or remove a file"
_REFUSED = {
    "start a process or a program": ("fork", "vfork", "execve", "execveat"),
    "use the network": ("socket", "socketpair"),
    _FILES: (
        "creat",
        "truncate",
        "ftruncate",
        "fallocate",
        "unlink",
        "unlinkat",
        "rename",
        "renameat",
        "renameat2",
        "mkdir",
        "mkdirat",
        "rmdir",
        "link",
        "linkat",
        "symlink",
        "symlinkat",
        "mknod",
        "mknodat",
        "chmod",
        "fchmod",
        "fchmodat",
        "fchmodat2",
        "chown",
        "fchown",
        "lchown",
        "fchownat",
        "utime",
        "utimes",
        "utimensat",
        "futimesat",
        "setxattr",
        "lsetxattr",
        "fsetxattr",
        "removexattr",
        "lremovexattr",
        "fremovexattr",
        "memfd_create",
        "name_to_handle_at",
        "open_by_handle_at",
    ),
    "reach other processes": (
        "ptrace",
        "process_vm_readv",
        "process_vm_writev",
        "pidfd_open",
        "pidfd_getfd",
        "pidfd_send_signal",
        "tkill",
        "kcmp",
    ),
    "change the system or its own privileges": (
        "mount",
        "umount2",
        "pivot_root",
        "chroot",
        "unshare",
        "setns",
        "io_uring_setup",
        "io_uring_enter",
        "io_uring_register",
        "bpf",
        "perf_event_open",
        "userfaultfd",
        "keyctl",
        "add_key",
        "request_key",
        "kexec_load",
        "kexec_file_load",
        "init_module",
        "finit_module",
        "delete_module",
        "reboot",
        "swapon",
        "swapoff",
        "acct",
        "syslog",
        "quotactl",
        "fanotify_init",
        "personality",
        "setuid",
        "setgid",
        "setreuid",
        "setregid",
        "setresuid",
        "setresgid",
        "setgroups",
        "setfsuid",
        "setfsgid",
    ),
}
#: Flags of open/openat that ask to write, create or truncate (O_WRONLY, O_RDWR, O_CREAT, O_TRUNC,
#: O_APPEND, __O_TMPFILE's own bit): any one of them refuses the call.
_WRITE_FLAGS = (0o1, 0o2, 0o100, 0o1000, 0o2000, 0o20000000)


def refused_syscalls() -> dict[str, tuple[str, ...]]:
    """What the system-call filter refuses, by purpose (besides writable opens, clone other than
    a thread, clone3, openat2, signals to other processes and TIOCSTI, which depend on arguments).

    Example:
        >>> "fork" in refused_syscalls()["start a process or a program"]
        True
    """
    return dict(_REFUSED)


def _libc() -> Any:
    return ctypes.CDLL(None, use_errno=True)


def _fail(what: str) -> OSWallError:
    code = ctypes.get_errno()
    return OSWallError(f"{what} failed ({errno.errorcode.get(code, code)}: {os.strerror(code)})")


def _leave_network(libc: Any, root: bool) -> str:
    """A private network and mount namespace: by root directly, by others inside a user namespace."""
    flags = _CLONE_NEWNET | _CLONE_NEWNS | (0 if root else _CLONE_NEWUSER)
    if libc.unshare(flags) == 0:
        return "own network and mount namespace"
    if libc.unshare(_CLONE_NEWNET | (0 if root else _CLONE_NEWUSER)) == 0:
        return "own network namespace"
    return "no namespace (the kernel refused one; sockets are refused by the filter)"


def _drop_root() -> str:
    """Switch to the unprivileged user ``nobody`` and check that root cannot be had back."""
    try:
        import pwd

        entry = pwd.getpwnam("nobody")
        uid, gid = entry.pw_uid, entry.pw_gid
    except (ImportError, KeyError):
        uid = gid = 65534
    try:
        os.setgroups([])
        os.setgid(gid)
        os.setuid(uid)
    except OSError as exc:
        raise OSWallError(f"switching from root to the unprivileged user {uid} failed ({exc})") from None
    try:
        os.setuid(0)
    except PermissionError:
        return f"nobody (uid {uid}, gid {gid})"
    raise OSWallError("the worker could become root again after switching users")


def _seccomp(pid: int) -> int:
    """Install the filter; returns how many rules it holds."""
    try:
        lib = ctypes.CDLL("libseccomp.so.2", use_errno=True)
    except OSError:
        raise OSWallError(
            "libseccomp.so.2 was not found: install it (Debian/Ubuntu: apt-get install libseccomp2; "
            "Fedora: dnf install libseccomp)"
        ) from None
    lib.seccomp_init.restype = ctypes.c_void_p
    lib.seccomp_init.argtypes = [ctypes.c_uint32]
    lib.seccomp_syscall_resolve_name.argtypes = [ctypes.c_char_p]
    lib.seccomp_rule_add_array.argtypes = [
        ctypes.c_void_p,
        ctypes.c_uint32,
        ctypes.c_int,
        ctypes.c_uint,
        ctypes.POINTER(_ArgCmp),
    ]
    lib.seccomp_load.argtypes = [ctypes.c_void_p]
    lib.seccomp_release.argtypes = [ctypes.c_void_p]
    ctx = lib.seccomp_init(_ALLOW)
    if not ctx:
        raise OSWallError("seccomp_init failed")
    eperm, enosys, kill = _errno_action(errno.EPERM), _errno_action(errno.ENOSYS), _KILL_PROCESS
    rules = 0

    def add(name: str, action: int, *cmps: tuple[int, int, int, int]) -> None:
        nonlocal rules
        nr = lib.seccomp_syscall_resolve_name(name.encode())
        if nr < 0:  # not a system call on this architecture
            return
        array = (_ArgCmp * max(len(cmps), 1))(*(_ArgCmp(*c) for c in cmps))
        rc = lib.seccomp_rule_add_array(ctx, action, nr, len(cmps), array)
        if rc < 0:
            lib.seccomp_release(ctx)
            raise OSWallError(f"seccomp could not add a rule for {name} ({os.strerror(-rc)})")
        rules += 1

    try:
        for purpose, names in _REFUSED.items():
            for name in names:
                add(name, eperm if purpose == _FILES else kill)
        # glibc tries clone3 first and falls back to clone, whose flags the filter can read
        for name in ("clone3", "openat2"):
            add(name, enosys)
        add("clone", kill, (0, _CMP_MASKED_EQ, _CLONE_THREAD, 0))
        for flag in _WRITE_FLAGS:
            add("open", eperm, (1, _CMP_MASKED_EQ, flag, flag))
            add("openat", eperm, (2, _CMP_MASKED_EQ, flag, flag))
        for name in ("kill", "tgkill", "rt_sigqueueinfo", "rt_tgsigqueueinfo"):
            add(name, kill, (0, _CMP_NE, pid, 0))
        add("ioctl", kill, (1, _CMP_MASKED_EQ, 0xFFFFFFFF, _TIOCSTI))
        rc = lib.seccomp_load(ctx)
        if rc < 0:
            raise OSWallError(f"seccomp_load failed ({os.strerror(-rc)})")
    finally:
        lib.seccomp_release(ctx)
    return rules


def confine(parent_pid: int | None = None) -> dict[str, str]:
    """Put up the operating-system wall around this process; returns what it holds, by name.

    ``parent_pid``: the process whose death must end this one (a parent-death signal); ``None``
    when the worker's parent is not the long-lived process that uses it (started from a thread).
    Raises :class:`OSWallError` when a part that the wall needs cannot be had.
    """
    if not sys.platform.startswith("linux"):
        raise OSWallError(f"the OS wall needs Linux (seccomp), this is {sys.platform}")
    libc = _libc()
    root = os.geteuid() == 0
    report = {"network": _leave_network(libc, root)}
    report["user"] = _drop_root() if root else f"{os.getuid()} (not root; unchanged)"
    if libc.prctl(_PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) != 0:
        raise _fail("prctl(PR_SET_NO_NEW_PRIVS)")
    if parent_pid is not None:
        # after the user switch, which clears it; then make sure the parent is still there
        if libc.prctl(_PR_SET_PDEATHSIG, int(signal.SIGKILL), 0, 0, 0) != 0:
            raise _fail("prctl(PR_SET_PDEATHSIG)")
        if os.getppid() != parent_pid:
            os._exit(1)
    report["seccomp"] = f"{_seccomp(os.getpid())} rules"
    return report
