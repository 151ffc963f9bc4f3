"""The benchmark's workload: the same five read-only commands for every tool."""

COMMANDS = [
    "hostname",
    "uname -r",
    "sysctl -n net.ipv4.ip_forward",
    "cat /proc/sys/kernel/random/boot_id",
    "ip -o -4 addr show dev eth0",
]
