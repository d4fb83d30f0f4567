# tftrail audit container on Azure Blob Storage.
#
# - Blob versioning keeps every overwritten or deleted blob as a version.
# - A container-level time-based retention (immutability) policy, locked: blobs cannot be
#   deleted or overwritten for `retention_days`, and a locked policy can only be extended.
#   protected_append_writes_enabled stays false: tftrail never appends to a blob.
#   KNOWN LIMITATION: a container-level policy also refuses to overwrite the checkpoint
#   blob; version-level immutability (immutable storage with versioning) is the equivalent
#   of S3 Object Lock and is the intended target once tftrail supports it on Azure.
# - No anonymous access, HTTPS and TLS 1.2 only, no shared-key access for writers
#   (use Entra ID roles).
# Apply once, run `terraform apply` again with `lock_policy = true` after checking, then run
# `tftrail storage check az://<container>/<prefix>`.

terraform {
  required_version = ">= 1.5"
  required_providers {
    azurerm = {
      source  = "hashicorp/azurerm"
      version = ">= 4.0"
    }
  }
}

provider "azurerm" {
  features {}
}

variable "resource_group_name" {
  type = string
}

variable "location" {
  type    = string
  default = "westeurope"
}

variable "account_name" {
  type        = string
  description = "Storage account name (globally unique)."
}

variable "retention_days" {
  description = "Retention of every blob, in days. Once locked it can only be extended."
  type        = number
  default     = 365
}

variable "lock_policy" {
  description = "Lock the immutability policy (irreversible)."
  type        = bool
  default     = true
}

variable "writer_principal_ids" {
  type = list(string)
}

variable "reader_principal_ids" {
  type    = list(string)
  default = []
}

resource "azurerm_storage_account" "audit" {
  name                            = var.account_name
  resource_group_name             = var.resource_group_name
  location                        = var.location
  account_tier                    = "Standard"
  account_replication_type        = "ZRS"
  https_traffic_only_enabled      = true
  min_tls_version                 = "TLS1_2"
  allow_nested_items_to_be_public = false
  shared_access_key_enabled       = false

  blob_properties {
    versioning_enabled = true
  }
}

resource "azurerm_storage_container" "audit" {
  name                  = "tftrail"
  storage_account_id    = azurerm_storage_account.audit.id
  container_access_type = "private"
}

resource "azurerm_storage_container_immutability_policy" "audit" {
  storage_container_resource_manager_id = azurerm_storage_container.audit.resource_manager_id
  immutability_period_in_days           = var.retention_days
  protected_append_writes_enabled       = false
  locked                                = var.lock_policy
}

# Writers: Storage Blob Data Contributor could delete; the immutability policy refuses
# deletes and overwrites of retained blobs, so the role cannot destroy the log.
resource "azurerm_role_assignment" "writer" {
  for_each             = toset(var.writer_principal_ids)
  scope                = azurerm_storage_container.audit.resource_manager_id
  role_definition_name = "Storage Blob Data Contributor"
  principal_id         = each.value
}

resource "azurerm_role_assignment" "reader" {
  for_each             = toset(var.reader_principal_ids)
  scope                = azurerm_storage_container.audit.resource_manager_id
  role_definition_name = "Storage Blob Data Reader"
  principal_id         = each.value
}

output "store" {
  value = "az://${azurerm_storage_container.audit.name}/log"
}
