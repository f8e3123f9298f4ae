"""Facts and probes: one shell command each, and a parser for its output.

A fact is a command plus a parser (as in pyinfra). Everything a server's page shows is
gathered by one round trip: the command prints sections, the parser reads them. The
commands use only POSIX shell and files every Linux has (/proc, /etc/os-release), so
they work on minimal images too.
"""

import shlex


# Three processes at most (head, df, ip; docker only where it is installed): each one costs a
# fork and exec on the host, and this runs on every host of a fan-out.
FACTS_FILES = "/etc/os-release /proc/sys/kernel/ostype /proc/sys/kernel/osrelease /proc/sys/kernel/hostname /proc/meminfo " \
    "/proc/uptime /proc/loadavg /proc/1/comm /sys/devices/system/cpu/online"
FACTS_COMMAND = "; ".join(
    [
        f"head -v -n 100 {FACTS_FILES} 2>/dev/null",
        "echo '==> df <=='; df -P -k -T 2>/dev/null",
        "echo '==> addresses <=='; ip -o addr show 2>/dev/null || hostname -I 2>/dev/null",
        "echo '==> docker <=='; if command -v docker >/dev/null 2>&1; then docker --version 2>/dev/null || echo installed; else echo none; fi",
        "echo '==> init <=='; if [ -d /run/systemd/system ]; then echo systemd; fi",
        "echo '==> python <=='; command -v python3 || echo none",
    ]
)

PROBE_COMMAND = "cat /proc/loadavg; grep -E '^MemAvailable:' /proc/meminfo; df -P -k / | tail -n 1"


def _sections(output):
    """Sections as `head -v` writes them: "==> /proc/uptime <==" then the file's lines."""
    sections, current = {}, None
    for line in output.splitlines():
        if line.startswith("==> ") and line.endswith(" <=="):
            current = line[4:-4].strip()
            sections[current] = []
        elif current is not None:
            sections[current].append(line)
    return sections


def _os_release(lines):
    values = {}
    for line in lines:
        if "=" in line:
            key, _, value = line.partition("=")
            try:
                values[key.strip()] = " ".join(shlex.split(value)) if value.strip() else ""
            except ValueError:
                values[key.strip()] = value.strip().strip('"')
    return values


def _meminfo(lines):
    values = {}
    for line in lines:
        name, _, rest = line.partition(":")
        parts = rest.split()
        if parts and parts[0].isdigit():
            values[name.strip()] = int(parts[0]) * 1024
    return values


def _df_row(line, typed=False):
    parts = line.split()
    offset = 1 if typed else 0
    if len(parts) < 6 + offset or not parts[1 + offset].isdigit():
        return None
    row = {"device": parts[0], "size_bytes": int(parts[1 + offset]) * 1024, "used_bytes": int(parts[2 + offset]) * 1024,
           "free_bytes": int(parts[3 + offset]) * 1024, "mount": " ".join(parts[5 + offset:])}
    if typed:
        row["type"] = parts[1]
    return row


VIRTUAL_FILESYSTEMS = {"tmpfs", "devtmpfs", "overlay", "squashfs", "proc", "sysfs", "cgroup", "cgroup2", "devpts", "mqueue", "shm"}


def _cpu_count(online):
    """"0-3,6" (/sys/devices/system/cpu/online) → 5."""
    count = 0
    for part in online.strip().split(","):
        if "-" in part:
            low, _, high = part.partition("-")
            if low.isdigit() and high.isdigit():
                count += int(high) - int(low) + 1
        elif part.isdigit():
            count += 1
    return count or None


def _addresses(lines):
    addresses = []
    for line in lines:
        parts = line.split()
        if len(parts) >= 4 and parts[2] in ("inet", "inet6"):
            interface, address = parts[1], parts[3].split("/")[0]
            if interface != "lo":
                addresses.append({"interface": interface, "family": parts[2], "address": address})
        elif parts and "inet" not in parts:
            addresses.extend({"interface": "", "family": "inet6" if ":" in part else "inet", "address": part} for part in parts)
    return addresses


def _first_float(lines, default=None):
    try:
        return float(lines[0].split()[0])
    except (IndexError, ValueError):
        return default


def parse_facts(output):
    """The facts command's output as the dict stored in Server.facts."""
    sections = _sections(output)

    def first(name, default=""):
        lines = sections.get(name) or [default]
        return lines[0].strip() if lines else default

    os_release = _os_release(sections.get("/etc/os-release", []))
    memory = _meminfo(sections.get("/proc/meminfo", []))
    rows = [row for row in (_df_row(line, typed=True) for line in sections.get("df", [])[1:]) if row]
    root = next((row for row in rows if row["mount"] == "/"), None)
    disks = [row for row in rows if row["type"] not in VIRTUAL_FILESYSTEMS or row["mount"] == "/"]
    docker_line = " ".join(sections.get("docker", ["none"])).strip()
    loadavg = first("/proc/loadavg").split()
    init = "systemd" if first("init") == "systemd" else first("/proc/1/comm")
    return {
        "os": {"id": os_release.get("ID", ""), "name": os_release.get("NAME", ""), "version": os_release.get("VERSION_ID", ""),
               "pretty_name": os_release.get("PRETTY_NAME", ""), "codename": os_release.get("VERSION_CODENAME", "")},
        "kernel": f"{first('/proc/sys/kernel/ostype')} {first('/proc/sys/kernel/osrelease')}".strip(),
        "hostname": first("/proc/sys/kernel/hostname"),
        "cpus": _cpu_count(first("/sys/devices/system/cpu/online")),
        "memory": {"total_bytes": memory.get("MemTotal"), "available_bytes": memory.get("MemAvailable"), "swap_total_bytes": memory.get("SwapTotal")},
        "disks": disks,
        "root_disk": root,
        "addresses": _addresses(sections.get("addresses", [])),
        "uptime_seconds": _first_float(sections.get("/proc/uptime", [])),
        "load": [float(value) for value in loadavg[:3]] if len(loadavg) >= 3 else [],
        "docker": {"installed": docker_line != "none" and bool(docker_line), "version": "" if docker_line in ("none", "installed") else docker_line},
        "init": init,
        "python": first("python").replace("none", ""),
    }


def parse_probe(output):
    """{load_1m, memory_available_bytes, disk_free_bytes} from the probe command's output."""
    lines = output.splitlines()
    state = {"load_1m": None, "memory_available_bytes": None, "disk_free_bytes": None}
    if lines:
        state["load_1m"] = _first_float(lines[:1])
    for line in lines[1:]:
        if line.startswith("MemAvailable:"):
            state["memory_available_bytes"] = _meminfo([line]).get("MemAvailable")
        else:
            row = _df_row(line)
            if row:
                state["disk_free_bytes"] = row["free_bytes"]
    return state
