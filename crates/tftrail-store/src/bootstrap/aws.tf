# tftrail audit bucket on AWS S3.
#
# Creates a write-once bucket for a tftrail log, a writer role that can only add objects
# (and move the checkpoint), and a reader role. Apply once, then run
#   tftrail storage check s3://<bucket>/<prefix>
#
# Why each setting matters:
# - Object Lock in COMPLIANCE mode with a default retention: every object version is
#   immutable for `retention_days`; nobody, the root user included, can delete it or shorten
#   its retention. (GOVERNANCE mode could be bypassed with a permission.)
# - Versioning (required by Object Lock): overwriting a key adds a version; the old one stays.
#   A DELETE only adds a delete marker; `tftrail verify` reports it, `tftrail recover` reads
#   the retained version.
# - Block Public Access and ObjectWriter-less ownership: no ACL or policy can open the bucket.
# - Default encryption, and a policy that refuses plain-HTTP requests.
# - The writer may create objects only under the log prefix and only when the key does not
#   exist yet (s3:if-none-match), except the checkpoint, which it updates with If-Match. It has
#   no delete permission; the bucket policy denies deletes to everyone.

terraform {
  required_version = ">= 1.5"
  required_providers {
    aws = {
      source  = "hashicorp/aws"
      version = ">= 5.60"
    }
  }
}

variable "bucket_name" {
  description = "Name of the audit bucket (globally unique)."
  type        = string
}

variable "log_prefix" {
  description = "Key prefix of the tftrail log inside the bucket, without a trailing slash."
  type        = string
  default     = "tftrail"
}

variable "retention_days" {
  description = "Default COMPLIANCE retention of every object, in days. Cannot be shortened later."
  type        = number
  default     = 365
}

variable "writer_principals" {
  description = "ARNs allowed to assume the writer role (CI runners that run terraform)."
  type        = list(string)
}

variable "reader_principals" {
  description = "ARNs allowed to assume the reader role (auditors)."
  type        = list(string)
  default     = []
}

variable "kms_key_arn" {
  description = "KMS key for SSE-KMS; empty for SSE-S3 (AES256)."
  type        = string
  default     = ""
}

resource "aws_s3_bucket" "audit" {
  bucket = var.bucket_name
  # Object Lock can only be enabled when the bucket is created.
  object_lock_enabled = true
}

resource "aws_s3_bucket_versioning" "audit" {
  bucket = aws_s3_bucket.audit.id
  versioning_configuration {
    status = "Enabled"
  }
}

resource "aws_s3_bucket_object_lock_configuration" "audit" {
  bucket = aws_s3_bucket.audit.id
  rule {
    default_retention {
      # COMPLIANCE: no principal can remove or shorten the retention of a version.
      mode = "COMPLIANCE"
      days = var.retention_days
    }
  }
  depends_on = [aws_s3_bucket_versioning.audit]
}

resource "aws_s3_bucket_public_access_block" "audit" {
  bucket                  = aws_s3_bucket.audit.id
  block_public_acls       = true
  ignore_public_acls      = true
  block_public_policy     = true
  restrict_public_buckets = true
}

resource "aws_s3_bucket_ownership_controls" "audit" {
  bucket = aws_s3_bucket.audit.id
  rule {
    # ACLs disabled: access is decided by IAM and the bucket policy only.
    object_ownership = "BucketOwnerEnforced"
  }
}

resource "aws_s3_bucket_server_side_encryption_configuration" "audit" {
  bucket = aws_s3_bucket.audit.id
  rule {
    apply_server_side_encryption_by_default {
      sse_algorithm     = var.kms_key_arn == "" ? "AES256" : "aws:kms"
      kms_master_key_id = var.kms_key_arn == "" ? null : var.kms_key_arn
    }
    bucket_key_enabled = var.kms_key_arn != ""
  }
}

data "aws_iam_policy_document" "bucket" {
  # TLS only.
  statement {
    sid     = "DenyInsecureTransport"
    effect  = "Deny"
    actions = ["s3:*"]
    resources = [
      aws_s3_bucket.audit.arn,
      "${aws_s3_bucket.audit.arn}/*",
    ]
    principals {
      type        = "*"
      identifiers = ["*"]
    }
    condition {
      test     = "Bool"
      variable = "aws:SecureTransport"
      values   = ["false"]
    }
  }
  # Nobody deletes log objects (Object Lock refuses locked versions anyway; this also stops
  # delete markers that hide objects from plain readers).
  statement {
    sid       = "DenyDeletes"
    effect    = "Deny"
    actions   = ["s3:DeleteObject", "s3:DeleteObjectVersion", "s3:PutLifecycleConfiguration"]
    resources = ["${aws_s3_bucket.audit.arn}/*", aws_s3_bucket.audit.arn]
    principals {
      type        = "*"
      identifiers = ["*"]
    }
  }
  # Objects other than the checkpoint may only be created, never overwritten.
  statement {
    sid           = "DenyOverwrites"
    effect        = "Deny"
    actions       = ["s3:PutObject"]
    not_resources = ["${aws_s3_bucket.audit.arn}/${var.log_prefix}/checkpoint"]
    principals {
      type        = "*"
      identifiers = ["*"]
    }
    condition {
      test     = "Null"
      variable = "s3:if-none-match"
      values   = ["true"]
    }
  }
}

resource "aws_s3_bucket_policy" "audit" {
  bucket     = aws_s3_bucket.audit.id
  policy     = data.aws_iam_policy_document.bucket.json
  depends_on = [aws_s3_bucket_public_access_block.audit]
}

data "aws_iam_policy_document" "assume_writer" {
  statement {
    actions = ["sts:AssumeRole"]
    principals {
      type        = "AWS"
      identifiers = var.writer_principals
    }
  }
}

data "aws_iam_policy_document" "assume_reader" {
  statement {
    actions = ["sts:AssumeRole"]
    principals {
      type        = "AWS"
      identifiers = length(var.reader_principals) > 0 ? var.reader_principals : var.writer_principals
    }
  }
}

data "aws_iam_policy_document" "writer" {
  # Create new log objects: only when the key does not exist (If-None-Match: *).
  statement {
    sid       = "CreateLogObjects"
    actions   = ["s3:PutObject"]
    resources = ["${aws_s3_bucket.audit.arn}/${var.log_prefix}/*"]
    condition {
      test     = "StringEquals"
      variable = "s3:if-none-match"
      values   = ["*"]
    }
  }
  # Move the checkpoint (compare-and-swap with If-Match); old versions stay locked.
  statement {
    sid       = "UpdateCheckpoint"
    actions   = ["s3:PutObject"]
    resources = ["${aws_s3_bucket.audit.arn}/${var.log_prefix}/checkpoint"]
  }
  statement {
    sid       = "ReadLog"
    actions   = ["s3:GetObject", "s3:GetObjectVersion"]
    resources = ["${aws_s3_bucket.audit.arn}/${var.log_prefix}/*"]
  }
  statement {
    sid       = "ListLog"
    actions   = ["s3:ListBucket", "s3:ListBucketVersions"]
    resources = [aws_s3_bucket.audit.arn]
    condition {
      test     = "StringLike"
      variable = "s3:prefix"
      values   = ["${var.log_prefix}/*", var.log_prefix]
    }
  }
  dynamic "statement" {
    for_each = var.kms_key_arn == "" ? [] : [1]
    content {
      sid       = "UseKey"
      actions   = ["kms:GenerateDataKey", "kms:Decrypt"]
      resources = [var.kms_key_arn]
    }
  }
}

resource "aws_iam_role" "writer" {
  name               = "tftrail-writer-${var.bucket_name}"
  assume_role_policy = data.aws_iam_policy_document.assume_writer.json
}

resource "aws_iam_role_policy" "writer" {
  name   = "tftrail-writer"
  role   = aws_iam_role.writer.id
  policy = data.aws_iam_policy_document.writer.json
}

data "aws_iam_policy_document" "reader" {
  statement {
    actions   = ["s3:GetObject", "s3:GetObjectVersion"]
    resources = ["${aws_s3_bucket.audit.arn}/${var.log_prefix}/*"]
  }
  # Listing versions lets `tftrail verify` see delete markers and shadowed versions;
  # reading the bucket configuration lets `tftrail storage check` run.
  statement {
    actions = [
      "s3:ListBucket",
      "s3:ListBucketVersions",
      "s3:GetBucketVersioning",
      "s3:GetBucketObjectLockConfiguration",
      "s3:GetBucketPublicAccessBlock",
      "s3:GetBucketPolicy",
    ]
    resources = [aws_s3_bucket.audit.arn]
  }
  dynamic "statement" {
    for_each = var.kms_key_arn == "" ? [] : [1]
    content {
      actions   = ["kms:Decrypt"]
      resources = [var.kms_key_arn]
    }
  }
}

resource "aws_iam_role" "reader" {
  name               = "tftrail-reader-${var.bucket_name}"
  assume_role_policy = data.aws_iam_policy_document.assume_reader.json
}

resource "aws_iam_role_policy" "reader" {
  name   = "tftrail-reader"
  role   = aws_iam_role.reader.id
  policy = data.aws_iam_policy_document.reader.json
}

output "store" {
  value = "s3://${aws_s3_bucket.audit.id}/${var.log_prefix}"
}

output "writer_role_arn" {
  value = aws_iam_role.writer.arn
}

output "reader_role_arn" {
  value = aws_iam_role.reader.arn
}
