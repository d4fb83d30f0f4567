# tftrail audit bucket on Google Cloud Storage: write-once through Object Retention Lock.
#
# tftrail creates every log object once (x-goog-if-generation-match: 0) and replaces only
# `checkpoint` (x-goog-if-generation-match: <generation>). So:
# - object retention is enabled on the bucket, and its label `tftrail-retention-days` tells
#   writers how long to keep what they create: every object except the checkpoint is uploaded
#   with a Locked retention until now + retention_days, in the upload request itself. Until
#   then nobody, project owners included, can replace or delete it, shorten its retention or
#   unlock it; a Locked retention can only be extended;
# - the checkpoint carries no retention, so it can move; versioning keeps every replaced
#   checkpoint and soft delete keeps deleted ones restorable for soft_delete_days;
# - no bucket retention policy (Bucket Lock): it would refuse to replace the checkpoint, so the
#   first append after `init` would fail forever;
# - no lifecycle rule: nothing is deleted automatically;
# - writers may create objects (with retention) but not delete or update them; replacing the
#   checkpoint needs storage.objects.delete, granted on `<log_prefix>/checkpoint` only;
# - no ACLs (uniform bucket-level access), never public (public access prevention).
#
# What remains:
# - writers choose each object's retention when they upload it: a writer's credentials could
#   create objects with a shorter or Unlocked retention (never shorten an existing Locked one),
#   and objects written before this configuration carry none. `storage check` samples a tile;
#   `tftrail verify` detects any change to the log's content;
# - an object under retention can still be made noncurrent (a delete by someone holding
#   storage.objects.delete on it); its data stays, retained, and `verify` reports the gap;
# - whoever may update the bucket (storage.buckets.update) can change the label, and so the
#   retention of objects created afterwards; `storage check` reports it;
# - the checkpoint's old versions are protected by soft delete only: keep witnesses or off-site
#   copies of checkpoints (a verifier remembers the last one it verified).
# Object retention cannot be turned off once enabled, and Locked objects cannot be deleted
# before their retention ends: choose retention_days with care. Apply once, then run
# `tftrail storage check gs://<bucket>/<prefix>`.

terraform {
  required_version = ">= 1.5"
  required_providers {
    google = {
      source  = "hashicorp/google"
      version = ">= 6.0"
    }
  }
}

variable "project" {
  type        = string
  description = "Project that holds the bucket and the tftrail roles."
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
  description = "How long every log object except the checkpoint is locked, in days (at most 36500)."
  type        = number
  default     = 365
  validation {
    condition     = var.retention_days >= 1 && var.retention_days <= 36500 && floor(var.retention_days) == var.retention_days
    error_message = "retention_days must be a whole number of days from 1 to 36500."
  }
}

variable "soft_delete_days" {
  description = "How long deleted objects (replaced checkpoints included) stay restorable, in days: 7 to 90."
  type        = number
  default     = 90
  validation {
    condition     = var.soft_delete_days >= 7 && var.soft_delete_days <= 90
    error_message = "GCS soft delete lasts 7 to 90 days."
  }
}

variable "writer_members" {
  description = "IAM members (serviceAccount:…) that append to the log."
  type        = list(string)
}

variable "reader_members" {
  description = "IAM members that read and verify the log and run `tftrail storage check`."
  type        = list(string)
  default     = []
}

resource "google_storage_bucket" "audit" {
  project  = var.project
  name     = var.bucket_name
  location = var.location

  # Per-object retention (Object Retention Lock). Once enabled it cannot be disabled.
  enable_object_retention = true

  # Read by writers once per process (storage.buckets.get): lock each new object this long.
  labels = {
    "tftrail-retention-days" = tostring(var.retention_days)
  }

  # No ACLs: IAM only.
  uniform_bucket_level_access = true
  # Never public, whatever IAM binding is added later.
  public_access_prevention = "enforced"

  # Replaced checkpoints stay as noncurrent versions.
  versioning {
    enabled = true
  }

  # Deleted objects (noncurrent versions included) stay restorable.
  soft_delete_policy {
    retention_duration_seconds = var.soft_delete_days * 86400
  }
}

# Writers: create objects with a retention, read them, read the bucket's settings. No
# storage.objects.delete (so no overwrite), no storage.objects.update, no
# storage.objects.overrideUnlockedRetention.
resource "google_project_iam_custom_role" "writer" {
  project     = var.project
  role_id     = "tftrailWriter"
  title       = "tftrail writer"
  description = "Append to a tftrail log: create objects with a retention, never delete or update them."
  permissions = [
    "storage.buckets.get",
    "storage.objects.create",
    "storage.objects.get",
    "storage.objects.list",
    "storage.objects.setRetention",
  ]
}

resource "google_storage_bucket_iam_member" "writer" {
  for_each = toset(var.writer_members)
  bucket   = google_storage_bucket.audit.name
  role     = google_project_iam_custom_role.writer.name
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

# Readers: read and list objects (`verify`, `log`, `prove`) and read the bucket's settings
# (`storage check`).
resource "google_project_iam_custom_role" "reader" {
  project     = var.project
  role_id     = "tftrailReader"
  title       = "tftrail reader"
  description = "Read and verify a tftrail log and check its bucket."
  permissions = [
    "storage.buckets.get",
    "storage.objects.get",
    "storage.objects.list",
  ]
}

resource "google_storage_bucket_iam_member" "reader" {
  for_each = toset(var.reader_members)
  bucket   = google_storage_bucket.audit.name
  role     = google_project_iam_custom_role.reader.name
  member   = each.value
}

output "store" {
  value = "gs://${google_storage_bucket.audit.name}/${var.log_prefix}"
}
