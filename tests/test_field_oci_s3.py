"""OCI Object Storage's S3 endpoint needs its own region (issue 15): the us-east-1 default
with an OCI endpoint is refused by validation, exit 2, the key named, no host contacted."""

from __future__ import annotations

from pathlib import Path

from test_inventory_validation import ONE_CP, assert_refused, gv, listener, no_contact

from provision.inventory import load_inventory
from provision.validate import validate

__all__ = ["listener", "no_contact"]  # fixtures used below

ENDPOINT = "https://ns1.compat.objectstorage.eu-frankfurt-1.oraclecloud.com"


def test_default_region_with_oci_endpoint_is_refused_before_contact(
        tmp_path: Path, capsys, listener, no_contact) -> None:
    assert_refused(
        tmp_path, capsys, listener, ["doctor"], ONE_CP,
        gv(f"etcd_backup_s3_bucket: backups\netcd_backup_s3_endpoint: {ENDPOINT}\n"),
        f"{{inv}}/group_vars/all.yml:2: group all: host cp1: etcd_backup_s3_region: us-east-1 "
        f"does not match the "
        f"OCI Object Storage endpoint {ENDPOINT} (the endpoint's region is eu-frankfurt-1): "
        f"set etcd_backup_s3_region to the OCI region identifier, e.g. eu-frankfurt-1")


def test_wrong_region_names_the_file_and_line(tmp_path: Path) -> None:
    inv = tmp_path / "inv"
    (inv / "group_vars").mkdir(parents=True)
    (inv / "hosts.yml").write_text(ONE_CP.replace("PORT", "22"))
    (inv / "group_vars" / "all.yml").write_text(
        f"etcd_backup_s3_endpoint: {ENDPOINT}\netcd_backup_s3_region: us-ashburn-1\n")
    errors, _ = validate(load_inventory(inv))
    assert any(e.startswith(f"{inv}/group_vars/all.yml:2: group all: host cp1: "
                            "etcd_backup_s3_region: us-ashburn-1 does not match")
               for e in errors), errors


def test_matching_region_and_other_endpoints_pass(tmp_path: Path) -> None:
    for name, text in [
        ("oci", f"etcd_backup_s3_endpoint: {ENDPOINT}\netcd_backup_s3_region: eu-frankfurt-1\n"),
        ("aws", "etcd_backup_s3_endpoint: https://s3.amazonaws.com\n"),
        ("none", "etcd_backup_s3_region: us-east-1\n"),
    ]:
        inv = tmp_path / name
        (inv / "group_vars").mkdir(parents=True)
        (inv / "hosts.yml").write_text(ONE_CP.replace("PORT", "22"))
        (inv / "group_vars" / "all.yml").write_text(text)
        errors, _ = validate(load_inventory(inv))
        assert not [e for e in errors if "etcd_backup_s3_region" in e], (name, errors)
