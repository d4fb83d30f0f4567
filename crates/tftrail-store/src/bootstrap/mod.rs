//! `tftrail bootstrap aws|gcp|azure`: Terraform configurations for a correct audit bucket.
//!
//! Each configuration is a self-contained root module the user applies once, with comments
//! that explain every setting. `storage check` verifies the result.

use crate::location::Cloud;

const AWS: &str = include_str!("aws.tf");
const GCP: &str = include_str!("gcp.tf");
const AZURE: &str = include_str!("azure.tf");

/// The Terraform configuration that creates a write-once audit bucket on `cloud`.
pub fn bootstrap_config(cloud: Cloud) -> &'static str {
    match cloud {
        Cloud::S3 => AWS,
        Cloud::Gcs => GCP,
        Cloud::Azure => AZURE,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn has_all(text: &str, needles: &[&str]) {
        for n in needles {
            assert!(text.contains(n), "missing {n:?}");
        }
    }

    #[test]
    fn aws_config_has_every_property() {
        has_all(
            bootstrap_config(Cloud::S3),
            &[
                "object_lock_enabled = true",
                "aws_s3_bucket_object_lock_configuration",
                "mode = \"COMPLIANCE\"",
                "var.retention_days",
                "default     = 365",
                "aws_s3_bucket_versioning",
                "status = \"Enabled\"",
                "aws_s3_bucket_public_access_block",
                "block_public_acls       = true",
                "ignore_public_acls      = true",
                "block_public_policy     = true",
                "restrict_public_buckets = true",
                "aws_s3_bucket_server_side_encryption_configuration",
                "aws:SecureTransport",
                "s3:if-none-match",
                "s3:PutObject",
                "checkpoint",
                "tftrail-writer",
                "tftrail-reader",
                "s3:DeleteObject",
                "BucketOwnerEnforced",
            ],
        );
        // The writer must never get delete permissions in an Allow.
        let writer = bootstrap_config(Cloud::S3)
            .split("data \"aws_iam_policy_document\" \"writer\"")
            .nth(1)
            .unwrap()
            .split("resource ")
            .next()
            .unwrap();
        assert!(!writer.contains("\"s3:DeleteObject\""), "writer can delete");
        assert!(!writer.contains("\"s3:*\""));
    }

    #[test]
    fn gcp_config_has_every_property() {
        let gcp = bootstrap_config(Cloud::Gcs);
        has_all(
            gcp,
            &[
                "enable_object_retention = true",
                // The label writers read: the same name as the store's.
                &format!(
                    "\"{}\" = tostring(var.retention_days)",
                    crate::gcs::GCS_RETENTION_LABEL
                ),
                "default     = 365",
                "versioning {",
                "enabled = true",
                "soft_delete_policy",
                "var.soft_delete_days * 86400",
                "public_access_prevention = \"enforced\"",
                "uniform_bucket_level_access = true",
                "storage.objects.setRetention",
                "storage.buckets.get",
                "storage.objects.delete",
                "/checkpoint",
                "tftrailReader",
            ],
        );
        assert!(!gcp.contains("KNOWN LIMITATION"));
        // A retention policy would refuse to replace the checkpoint; no lifecycle rule may
        // delete anything.
        assert!(!gcp.contains("retention_policy {"));
        assert!(!gcp.contains("lifecycle_rule"));
        // Writers never get delete (but on the checkpoint), update, or the override of an
        // Unlocked retention.
        let writer = gcp
            .split("resource \"google_project_iam_custom_role\" \"writer\"")
            .nth(1)
            .unwrap()
            .split("resource ")
            .next()
            .unwrap();
        assert!(writer.contains("storage.objects.setRetention"));
        for p in [
            "storage.objects.delete",
            "storage.objects.update",
            "storage.objects.overrideUnlockedRetention",
        ] {
            assert!(!writer.contains(p), "writer has {p}");
        }
        // Only the custom roles: a predefined one (objectAdmin, objectUser …) could delete.
        assert!(!gcp.contains("roles/storage."));
        let delete_grant = gcp
            .split("resource \"google_storage_bucket_iam_member\" \"writer_checkpoint\"")
            .nth(1)
            .unwrap();
        assert!(delete_grant.contains("objects/${var.log_prefix}/checkpoint\\\""));
    }

    #[test]
    fn azure_config_uses_version_level_immutability() {
        let az = bootstrap_config(Cloud::Azure);
        has_all(
            az,
            &[
                "versioning_enabled = true",
                "immutability_policy {",
                "allow_protected_append_writes = false",
                "period_since_creation_in_days = var.retention_days",
                "var.lock_policy ? \"Locked\" : \"Unlocked\"",
                "allow_nested_items_to_be_public = false",
                "https_traffic_only_enabled      = true",
                "shared_access_key_enabled       = false",
                "container_access_type = \"private\"",
                "blobs/write",
                "var.retention_days",
            ],
        );
        // A container-level policy refuses to overwrite the checkpoint.
        assert!(!az.contains("azurerm_storage_container_immutability_policy"));
        // Writers never get delete.
        let writer = az
            .split("resource \"azurerm_role_definition\" \"writer\"")
            .nth(1)
            .unwrap()
            .split("resource ")
            .next()
            .unwrap();
        assert!(!writer.contains("delete"), "writer can delete");
        assert!(!writer.contains("Contributor"));
    }
}
