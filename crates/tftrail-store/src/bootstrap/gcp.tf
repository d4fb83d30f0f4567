# tftrail audit bucket on Google Cloud Storage.
#
# A locked retention policy (Bucket Lock) keeps every object for `retention_days`: objects
# cannot be deleted or overwritten until they are that old, and a locked policy can never be
# removed or shortened. (GCS does not combine retention policies with object versioning;
# the retention policy is the stronger guarantee.) tftrail writes with
# x-goog-if-generation-match: 0 (create only).
# KNOWN LIMITATION: a retention policy also refuses to *replace* an object, and the
# checkpoint is replaced on every append. Until tftrail supports a separate checkpoint
# location on GCS, this configuration suits archives, not a live log.
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

variable "bucket_name" {
  type        = string
  description = "Name of the audit bucket (globally unique)."
}

variable "location" {
  type    = string
  default = "EU"
}

variable "retention_days" {
  description = "Retention of every object, in days. Locked: cannot be shortened later."
  type        = number
  default     = 365
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
  name     = var.bucket_name
  location = var.location

  # No ACLs: IAM only.
  uniform_bucket_level_access = true
  # Never public, whatever IAM binding is added later.
  public_access_prevention    = "enforced"

  retention_policy {
    retention_period = var.retention_days * 86400
    # Bucket Lock: irreversible.
    is_locked = true
  }
}

# Writers create objects; objectCreator has no delete or overwrite permission.
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

resource "google_storage_bucket_iam_member" "reader" {
  for_each = toset(var.reader_members)
  bucket   = google_storage_bucket.audit.name
  role     = "roles/storage.objectViewer"
  member   = each.value
}

output "store" {
  value = "gs://${google_storage_bucket.audit.name}/tftrail"
}
