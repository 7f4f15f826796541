#!/usr/bin/python3 -I
"""OCI runtime wrapper installed by DLTK Deploy's scripts/ensure-docker.sh.

This machine's capability bounding set lacks capabilities that `docker run --privileged`
asks for, so runc fails with "unable to apply caps". Before `runc create|run` (and
`runc exec --process FILE`) drop from the OCI spec every capability absent from this
process's CapBnd, then exec the real runc with the same arguments. Specs that ask for no
missing capability (every unprivileged container) are left byte-for-byte alone.
"""

import json
import os
import sys

RUNC = "@RUNC@"  # the real runc; scripts/ensure-docker.sh fills it in when it installs this file
NAMES = (
    "CHOWN DAC_OVERRIDE DAC_READ_SEARCH FOWNER FSETID KILL SETGID SETUID SETPCAP "
    "LINUX_IMMUTABLE NET_BIND_SERVICE NET_BROADCAST NET_ADMIN NET_RAW IPC_LOCK IPC_OWNER "
    "SYS_MODULE SYS_RAWIO SYS_CHROOT SYS_PTRACE SYS_PACCT SYS_ADMIN SYS_BOOT SYS_NICE "
    "SYS_RESOURCE SYS_TIME SYS_TTY_CONFIG MKNOD LEASE AUDIT_WRITE AUDIT_CONTROL SETFCAP "
    "MAC_OVERRIDE MAC_ADMIN SYSLOG WAKE_ALARM BLOCK_SUSPEND AUDIT_READ PERFMON BPF "
    "CHECKPOINT_RESTORE"
).split()
GLOBAL_OPTIONS_WITH_VALUE = {"--root", "--log", "--log-format", "--criu", "--rootless"}


def missing_capabilities() -> set:
    with open("/proc/self/status") as status:
        for line in status:
            if line.startswith("CapBnd:"):
                mask = int(line.split()[1], 16)
                return {"CAP_" + n for i, n in enumerate(NAMES) if not (mask >> i) & 1}
    return set()


def option(args: list, names: tuple):
    for i, arg in enumerate(args):
        for name in names:
            if arg == name and i + 1 < len(args):
                return args[i + 1]
            if arg.startswith(name + "="):
                return arg.split("=", 1)[1]
    return None


def spec_to_filter(args: list):
    i = 0
    while i < len(args):
        arg = args[i]
        if arg in GLOBAL_OPTIONS_WITH_VALUE:
            i += 2
            continue
        if arg.startswith("-"):
            i += 1
            continue
        rest = args[i + 1 :]
        if arg in ("create", "run"):
            bundle = option(rest, ("--bundle", "-b")) or "."
            return os.path.join(bundle, "config.json"), "process"
        if arg == "exec":
            process = option(rest, ("--process", "-p"))
            return (process, None) if process else (None, None)
        return None, None
    return None, None


def drop_missing(path: str, key) -> None:
    missing = missing_capabilities()
    if not missing:
        return
    with open(path) as f:
        spec = json.load(f)
    process = spec.get(key, {}) if key else spec
    caps = process.get("capabilities") or {}
    changed = False
    for kind, names in caps.items():
        kept = [n for n in (names or []) if n not in missing]
        if kept != (names or []):
            caps[kind] = kept
            changed = True
    if changed:
        tmp = path + ".dltk-capbnd"
        with open(tmp, "w") as f:
            json.dump(spec, f)
        os.replace(tmp, path)


def main() -> None:
    args = sys.argv[1:]
    try:
        path, key = spec_to_filter(args)
        if path:
            drop_missing(path, key)
    except Exception as exc:  # never block a container over the wrapper itself
        print(f"dltk-runc-capbnd: left the spec as it was: {exc}", file=sys.stderr)
    os.execv(RUNC, [RUNC] + args)


if __name__ == "__main__":
    main()
