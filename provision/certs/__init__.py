"""Certificates: the kubeadm cluster PKI check (``pki``) and host ACME certificates (``acme``).

Pure functions only; the commands in ``provision.commands.certs`` run the playbooks.
"""
