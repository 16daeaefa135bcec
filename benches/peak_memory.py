#!/usr/bin/env python3
"""Peak memory of a wasmpool program and of its worker processes.

    python3 benches/peak_memory.py PROGRAM [ARGS...]
    python3 benches/peak_memory.py wine PROGRAM.exe [ARGS...]     # under Wine
    QEMU_LD_PREFIX=/usr/aarch64-linux-gnu python3 benches/peak_memory.py AARCH64_PROGRAM

Runs the command and, every 5 ms until it exits, reads /proc/PID/status of
every process whose command line names the program or wasmpool-worker
(under Wine and qemu-user these are Linux processes too, so the figures
include the emulator's own memory). Prints each one's peak resident set
(VmHWM) and peak virtual size (VmPeak): the address space a pooling
allocator reserves shows in the second, what is touched in the first.
Linux only (it reads /proc). docs/benchmarks.md has the figures.
"""
import os
import subprocess
import sys
import time


def status(pid):
    fields = {}
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            key, _, value = line.partition(":")
            if key in ("VmHWM", "VmPeak"):
                fields[key] = int(value.split()[0])  # KiB
    return fields


def main():
    command = sys.argv[1:]
    if not command:
        sys.exit(__doc__)
    program = os.path.basename(command[1] if command[0] == "wine" and len(command) > 1 else command[0])
    child = subprocess.Popen(command, stdout=subprocess.DEVNULL)
    peaks = {}
    while child.poll() is None:
        for pid in filter(str.isdigit, os.listdir("/proc")):
            try:
                with open(f"/proc/{pid}/cmdline", "rb") as f:
                    cmdline = f.read().replace(b"\0", b" ").decode(errors="replace")
                if "wasmpool-worker" in cmdline:
                    role = "worker"
                elif program in cmdline and "peak_memory" not in cmdline and int(pid) != child.pid:
                    role = program
                elif int(pid) == child.pid:
                    role = program
                else:
                    continue
                now = status(pid)
            except (OSError, ValueError):
                continue  # the process ended meanwhile
            old = peaks.get(pid, (role, {}))[1]
            peaks[pid] = (role, {k: max(now.get(k, 0), old.get(k, 0)) for k in ("VmHWM", "VmPeak")})
        time.sleep(0.005)
    for pid, (role, peak) in sorted(peaks.items(), key=lambda item: int(item[0])):
        if peak["VmHWM"] < 4096:
            continue  # a launcher (wine's, a shell) gone before it mattered
        print(f"{role} (pid {pid}): peak resident {peak['VmHWM'] / 1024:.0f} MiB, "
              f"peak virtual {peak['VmPeak'] / 1024 / 1024:.1f} GiB")
    sys.exit(child.returncode)


if __name__ == "__main__":
    main()
