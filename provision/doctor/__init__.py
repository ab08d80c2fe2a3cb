"""`provision doctor`: preflight over SSH (paramiko), no Ansible, nothing changed on hosts.

probe.py      the one shell script run per host and the parser of its sections (pure)
model.py      CheckResult (PASS/WARN/FAIL) and HostSpec (what a host is meant to become)
checks.py     host resources: sudo, OS, arch, CPU, memory, disks, swap, clock, cgroup (pure)
netchecks.py  ports in use, firewall, HTTPS from the host, MetalLB subnets (pure)
iptables.py   iptables-save parsing and rule-order evaluation (pure)
ssh.py        one paramiko session per host, strict host key checking
local.py      ansible_connection: local (the controller itself)
engine.py     all hosts in parallel, then the checks
report.py     rich table or plain lines
options.py    --url (http/https only) and --timeout (finite) checks
"""
