# tftrail audit bucket on Google Cloud Storage.
#
# KNOWN LIMITATION: this bucket is NOT write-once storage, and `tftrail storage check` says so.
# tftrail creates every object once (x-goog-if-generation-match: 0) and replaces only
# `checkpoint` (x-goog-if-generation-match: <generation>). What would make GCS write-once
# cannot host that checkpoint through the object_store client tftrail uses:
# - a bucket retention policy (Bucket Lock) refuses to replace any object until it is
#   `retention_days` old, so the first append after `init` fails on the checkpoint, and
#   GCS does not combine a retention policy with object versioning;
# - Object Retention Lock (per-object retention, `enable_object_retention`) needs each
#   object's retention set in its upload metadata or by a later PATCH of the JSON API,
#   which object_store does not expose.
# See docs/decisions/0004-object-storage.md for what supporting either would take.
#
# What this configuration does instead, for a log that can grow:
# - object versioning: an overwritten or deleted object stays as a noncurrent version;
# - soft delete for 90 days (the maximum): even a deleted noncurrent version can be restored;
# - no lifecycle rule: nothing is ever deleted automatically;
# - writers may create objects but not delete them, and overwriting an object needs
#   storage.objects.delete: they get that permission for `<log_prefix>/checkpoint` only,
#   through an IAM condition, so they cannot replace a tile, a bundle, a blob or a claim;
# - no ACLs (uniform bucket-level access), never public (public access prevention).
# A project owner can still change all of this: rely on `tftrail verify` (which detects any
# change) and on witnesses or off-site copies of checkpoints, not on the bucket alone.
# Apply once, then run `tftrail storage check gs://<bucket>/<prefix>`.

terraform {
  required_version = ">= 1.5"
  required_providers {
    google = {
      source  = "hashicorp/google"
      version = ">= 5.0"
    }
  }
}

variable "project" {
  type        = string
  description = "Project that holds the bucket and the writer role."
}

variable "bucket_name" {
  type        = string
  description = "Name of the audit bucket (globally unique)."
}

variable "location" {
  type    = string
  default = "EU"
}

variable "log_prefix" {
  description = "Key prefix of the log inside the bucket (the store is gs://<bucket>/<log_prefix>)."
  type        = string
  default     = "tftrail"
}

variable "retention_days" {
  description = "How long deleted objects stay restorable (soft delete), in days; at most 90."
  type        = number
  default     = 90
}

variable "writer_members" {
  description = "IAM members (serviceAccount:…) that append to the log."
  type        = list(string)
}

variable "reader_members" {
  type    = list(string)
  default = []
}

resource "google_storage_bucket" "audit" {
  project  = var.project
  name     = var.bucket_name
  location = var.location

  # No ACLs: IAM only.
  uniform_bucket_level_access = true
  # Never public, whatever IAM binding is added later.
  public_access_prevention = "enforced"

  # Overwritten and deleted objects stay as noncurrent versions.
  versioning {
    enabled = true
  }

  # Deleted objects (noncurrent versions included) stay restorable.
  soft_delete_policy {
    retention_duration_seconds = var.retention_days * 86400
  }
}

# Writers create objects; objectCreator cannot delete, and so cannot overwrite.
resource "google_storage_bucket_iam_member" "writer" {
  for_each = toset(var.writer_members)
  bucket   = google_storage_bucket.audit.name
  role     = "roles/storage.objectCreator"
  member   = each.value
}

resource "google_storage_bucket_iam_member" "writer_read" {
  for_each = toset(var.writer_members)
  bucket   = google_storage_bucket.audit.name
  role     = "roles/storage.objectViewer"
  member   = each.value
}

# Replacing the checkpoint needs storage.objects.delete on that one object.
resource "google_project_iam_custom_role" "checkpoint_writer" {
  project     = var.project
  role_id     = "tftrailCheckpointWriter"
  title       = "tftrail checkpoint writer"
  description = "Replace a tftrail log's checkpoint (granted on that object only)."
  permissions = ["storage.objects.delete"]
}

resource "google_storage_bucket_iam_member" "writer_checkpoint" {
  for_each = toset(var.writer_members)
  bucket   = google_storage_bucket.audit.name
  role     = google_project_iam_custom_role.checkpoint_writer.name
  member   = each.value
  condition {
    title      = "tftrail checkpoint only"
    expression = "resource.name == \"projects/_/buckets/${var.bucket_name}/objects/${var.log_prefix}/checkpoint\""
  }
}

resource "google_storage_bucket_iam_member" "reader" {
  for_each = toset(var.reader_members)
  bucket   = google_storage_bucket.audit.name
  role     = "roles/storage.objectViewer"
  member   = each.value
}

output "store" {
  value = "gs://${google_storage_bucket.audit.name}/${var.log_prefix}"
}
