"""provision: Ansible-driven Kubernetes host bootstrap, upgrades and etcd backups."""

__version__ = "0.1.0"
