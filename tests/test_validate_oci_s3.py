"""OCI Object Storage's S3-compatible endpoint needs its own region: the AWS default
``us-east-1`` (or another region than the endpoint names) is refused before any contact."""

from __future__ import annotations

import pytest

from tests import test_inventory_validation as tiv
from tests.test_inventory_validation import ONE_CP, assert_refused, gv, run_cli, write_inventory

listener = tiv.listener
no_contact = tiv.no_contact

ENDPOINT = "https://axaxnpcrorw5.compat.objectstorage.eu-frankfurt-1.oraclecloud.com"


@pytest.mark.parametrize("command", ["validate", "doctor", "bootstrap"])
def test_oci_endpoint_with_default_region_is_refused(tmp_path, capsys, listener, no_contact,  # noqa: F811
                                                     command):
    assert_refused(
        tmp_path, capsys, listener, [command], ONE_CP,
        gv(f"etcd_backup_s3_bucket: backups\netcd_backup_s3_endpoint: {ENDPOINT}\n"),
        "{inv}/group_vars/all.yml:2: group all: host cp1: etcd_backup_s3_region: the default "
        f"us-east-1 does not match the OCI Object Storage endpoint {ENDPOINT} (region "
        "eu-frankfurt-1): set etcd_backup_s3_region: eu-frankfurt-1")


def test_oci_endpoint_with_another_region_is_refused(tmp_path, capsys, listener, no_contact):
    assert_refused(
        tmp_path, capsys, listener, ["validate"], ONE_CP,
        gv(f"etcd_backup_s3_endpoint: {ENDPOINT}\netcd_backup_s3_region: us-ashburn-1\n"),
        "{inv}/group_vars/all.yml:2: group all: host cp1: etcd_backup_s3_region: "
        f"'us-ashburn-1' does not match the OCI Object Storage endpoint {ENDPOINT} (region "
        "eu-frankfurt-1): set etcd_backup_s3_region: eu-frankfurt-1")


@pytest.mark.parametrize("files", [
    gv(f"etcd_backup_s3_endpoint: {ENDPOINT}\netcd_backup_s3_region: eu-frankfurt-1\n"),
    gv("etcd_backup_s3_endpoint: https://minio.example.com:9000\n"),
    gv("etcd_backup_s3_bucket: backups\n"),
], ids=["oci-right-region", "other-endpoint-default-region", "aws"])
def test_matching_or_non_oci_endpoints_pass(tmp_path, capsys, listener, files):
    inv = write_inventory(tmp_path, listener.getsockname()[1], ONE_CP, files)
    code, out, err = run_cli(["-i", str(inv), "validate"], capsys)
    assert code == 0, err
