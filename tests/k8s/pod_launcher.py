"""Start one container the way the kubelet would, inside namespaces the emulated operator made for its pod.

Run as root as `python pod_launcher.py SPEC.json` in a fresh mount and UTS namespace (and, with
network namespaces, inside `ip netns exec POD`). The spec gives the pod's hostname, its hosts file, the
"image" (host directories bound at the image's paths: the project at /app, the virtual environment at
/opt/venv), the volumes (host directory, mount path, read-only or not), the working directory, uid, gid
and supplementary groups, the environment and the argv. The launcher builds a root filesystem on a tmpfs
from read-only binds of the host's system directories and those paths, mounts /tmp and the volumes,
makes the root read-only when `readOnlyRootFilesystem` says so, chroots, drops to the pod's user with
no_new_privs (allowPrivilegeEscalation: false), and execs the argv with exactly the given environment.
"""

from __future__ import annotations

import ctypes
import json
import os
import socket
import subprocess
import sys
from pathlib import Path

SYSTEM_DIRS = ("/usr", "/etc", "/var")
KERNEL_DIRS = ("/dev", "/proc", "/sys")
PR_SET_NO_NEW_PRIVS = 38


def mount(*args: str) -> None:
    subprocess.run(["mount", *args], check=True)


def bind(source: str, target: Path, read_only: bool, recursive: bool = False) -> None:
    if Path(source).is_dir():
        target.mkdir(parents=True, exist_ok=True)
    else:
        target.parent.mkdir(parents=True, exist_ok=True)
        target.touch(exist_ok=True)
    mount("--rbind" if recursive else "--bind", source, str(target))
    if read_only:
        mount("-o", "remount,bind,ro", str(target))


def build_root(spec: dict) -> Path:
    root = Path(spec["root"])
    mount("--make-rprivate", "/")
    mount("-t", "tmpfs", "-o", "mode=755", "podroot", str(root))
    for name in ("bin", "lib", "lib64", "sbin"):  # merged-/usr links, or plain directories
        host = Path("/") / name
        if host.is_symlink():
            (root / name).symlink_to(os.readlink(host))
        elif host.is_dir():
            bind(str(host), root / name, read_only=True)
    for directory in SYSTEM_DIRS:
        if Path(directory).is_dir():
            bind(directory, root / directory.lstrip("/"), read_only=True, recursive=True)
    for directory in KERNEL_DIRS:
        bind(directory, root / directory.lstrip("/"), read_only=False, recursive=True)
    bind(spec["hosts_file"], root / "etc/hosts", read_only=True)
    for volume in spec["volumes"]:
        target = root / volume["path"].lstrip("/")
        if volume["host"] == "tmpfs":
            target.mkdir(parents=True, exist_ok=True)
            mount("-t", "tmpfs", "-o", "mode=1777", "emptydir", str(target))
        else:
            bind(volume["host"], target, read_only=volume["read_only"])
    # The image's paths go last: a checkout under /tmp (the project's editable install points into it)
    # must stay visible above the /tmp emptyDir. Later binds may sit inside earlier ones (/app in /work/...).
    for host, path in spec["image"]:
        bind(host, root / path.lstrip("/"), read_only=True)
    if spec["read_only_root"]:
        mount("-o", "remount,ro", str(root))
    return root


def main(spec_file: str) -> None:
    spec = json.loads(Path(spec_file).read_text())
    socket.sethostname(spec["hostname"])
    root = build_root(spec)
    os.chroot(root)
    os.chdir(spec["workdir"])
    os.setgroups(spec["groups"])
    os.setgid(spec["gid"])
    os.setuid(spec["uid"])
    if spec["no_new_privs"] and ctypes.CDLL(None, use_errno=True).prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) != 0:
        raise OSError(ctypes.get_errno(), "prctl(PR_SET_NO_NEW_PRIVS)")
    os.execvpe(spec["argv"][0], spec["argv"], spec["env"])


if __name__ == "__main__":
    main(sys.argv[1])
