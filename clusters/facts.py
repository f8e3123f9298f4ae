"""Facts and probes: one shell command each, and a parser for its output.

A fact is a command plus a parser (as in pyinfra). Everything a server's page shows is
gathered by one round trip: the command prints sections, the parser reads them. The
commands use only POSIX shell and files every Linux has (/proc, /etc/os-release), so
they work on minimal images too.
"""

import shlex

SECTION = "@@filrouge:"

FACTS_COMMAND = "; ".join(
    [
        f"echo '{SECTION}os'; cat /etc/os-release 2>/dev/null",
        f"echo '{SECTION}kernel'; uname -srm",
        f"echo '{SECTION}hostname'; hostname 2>/dev/null || cat /etc/hostname",
        f"echo '{SECTION}cpus'; getconf _NPROCESSORS_ONLN 2>/dev/null || grep -c ^processor /proc/cpuinfo",
        f"echo '{SECTION}meminfo'; grep -E '^(MemTotal|MemAvailable|SwapTotal):' /proc/meminfo",
        f"echo '{SECTION}disks'; df -P -k -x tmpfs -x devtmpfs -x overlay -x squashfs 2>/dev/null || df -P -k",
        f"echo '{SECTION}rootdisk'; df -P -k / | tail -n 1",
        f"echo '{SECTION}addresses'; (ip -o addr show 2>/dev/null || hostname -I 2>/dev/null)",
        f"echo '{SECTION}uptime'; cat /proc/uptime",
        f"echo '{SECTION}loadavg'; cat /proc/loadavg",
        f"echo '{SECTION}docker'; (command -v docker >/dev/null 2>&1 && docker --version 2>/dev/null) || (command -v dockerd >/dev/null 2>&1 && dockerd --version 2>/dev/null) || echo none",
        f"echo '{SECTION}init'; if [ -d /run/systemd/system ]; then echo systemd; else cat /proc/1/comm 2>/dev/null; fi",
        f"echo '{SECTION}python'; command -v python3 || echo none",
    ]
)

PROBE_COMMAND = "cat /proc/loadavg; grep -E '^MemAvailable:' /proc/meminfo; df -P -k / | tail -n 1"


def _sections(output):
    sections, current = {}, None
    for line in output.splitlines():
        if line.startswith(SECTION):
            current = line[len(SECTION):].strip()
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


def _df_row(line):
    parts = line.split()
    if len(parts) < 6 or not parts[1].isdigit():
        return None
    return {"device": parts[0], "size_bytes": int(parts[1]) * 1024, "used_bytes": int(parts[2]) * 1024,
            "free_bytes": int(parts[3]) * 1024, "mount": " ".join(parts[5:])}


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
    os_release = _os_release(sections.get("os", []))
    memory = _meminfo(sections.get("meminfo", []))
    disks = [row for row in map(_df_row, sections.get("disks", [])[1:]) if row]
    root = _df_row((sections.get("rootdisk") or [""])[0])
    docker_line = " ".join(sections.get("docker", ["none"])).strip()
    try:
        cpus = int((sections.get("cpus") or ["0"])[0].strip())
    except ValueError:
        cpus = None
    loadavg = (sections.get("loadavg") or [""])[0].split()
    return {
        "os": {"id": os_release.get("ID", ""), "name": os_release.get("NAME", ""), "version": os_release.get("VERSION_ID", ""),
               "pretty_name": os_release.get("PRETTY_NAME", ""), "codename": os_release.get("VERSION_CODENAME", "")},
        "kernel": " ".join(sections.get("kernel", [])).strip(),
        "hostname": " ".join(sections.get("hostname", [])).strip(),
        "cpus": cpus,
        "memory": {"total_bytes": memory.get("MemTotal"), "available_bytes": memory.get("MemAvailable"), "swap_total_bytes": memory.get("SwapTotal")},
        "disks": disks,
        "root_disk": root,
        "addresses": _addresses(sections.get("addresses", [])),
        "uptime_seconds": _first_float(sections.get("uptime", [])),
        "load": [float(value) for value in loadavg[:3]] if len(loadavg) >= 3 else [],
        "docker": {"installed": docker_line != "none" and bool(docker_line), "version": "" if docker_line == "none" else docker_line},
        "init": " ".join(sections.get("init", [])).strip(),
        "python": " ".join(sections.get("python", [])).strip().replace("none", ""),
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
