# tftrail audit log on Azure Blob Storage, with version-level immutability (WORM).
#
# tftrail writes every object once (If-None-Match: *) and replaces only `checkpoint`, by
# compare-and-swap (If-Match). A container-level time-based retention policy refuses every
# overwrite, the checkpoint's included, so it cannot host a live log. Version-level
# immutability (immutable storage with versioning) is Azure's equivalent of S3 Object Lock:
# - blob versioning: every overwrite keeps the replaced content as a previous version, and
#   deleting a blob only turns its current version into a previous one;
# - a default time-based retention policy on the account, inherited by every blob version:
#   no version can be deleted or changed for `retention_days`. Each checkpoint replacement
#   creates a new current version (which inherits the policy) and leaves the replaced one
#   retained, so the checkpoint can move while every version of it stays.
# - Locked, the policy can only be extended, by anyone, the subscription owner included.
# Version-level immutability can only be enabled when the account is created, and Azure only
# creates the policy Disabled or Unlocked. So:
#   1. terraform apply                        (policy Unlocked)
#   2. tftrail storage check az://<container>/<prefix>  (with the AZURE_* variables set)
#   3. terraform apply -var lock_policy=true  (Locked: irreversible)
# Writers get a custom role that can read, create and overwrite blobs but not delete them;
# the retention policy also refuses deletes and changes of retained versions.
# A deleted or overwritten current version makes the log *look* damaged (`verify` fails) while
# the retained versions still hold it; `tftrail recover` reads object versions on S3 only, so
# on Azure restore them with the Azure tools (copy the version over the base blob).
# No anonymous access, HTTPS and TLS 1.2 only, no shared-key access (use Entra ID).

terraform {
  required_version = ">= 1.5"
  required_providers {
    azurerm = {
      source  = "hashicorp/azurerm"
      version = ">= 4.9"
    }
  }
}

provider "azurerm" {
  features {}
  # Shared-key access is disabled on the account: manage containers through Entra ID.
  storage_use_azuread = true
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
  description = "Retention of every blob version, in days. Once locked it can only be extended."
  type        = number
  default     = 365
}

variable "lock_policy" {
  description = "Lock the retention policy (irreversible). Azure creates it Unlocked: apply once with false, check, then apply with true."
  type        = bool
  default     = false
}

variable "writer_principal_ids" {
  type = list(string)
}

variable "reader_principal_ids" {
  type    = list(string)
  default = []
}

data "azurerm_resource_group" "audit" {
  name = var.resource_group_name
}

resource "azurerm_storage_account" "audit" {
  name                            = var.account_name
  resource_group_name             = var.resource_group_name
  location                        = var.location
  account_kind                    = "StorageV2"
  account_tier                    = "Standard"
  account_replication_type        = "ZRS"
  https_traffic_only_enabled      = true
  min_tls_version                 = "TLS1_2"
  allow_nested_items_to_be_public = false
  shared_access_key_enabled       = false
  default_to_oauth_authentication = true

  blob_properties {
    # Required by version-level immutability: overwrites and deletes keep previous versions.
    versioning_enabled = true
  }

  # Version-level immutability for every container of the account, with a default time-based
  # retention policy that every blob version inherits.
  immutability_policy {
    # tftrail never appends to a blob: no writes of any kind into a retained version.
    allow_protected_append_writes = false
    period_since_creation_in_days = var.retention_days
    state                         = var.lock_policy ? "Locked" : "Unlocked"
  }
}

resource "azurerm_storage_container" "audit" {
  name                  = "tftrail"
  storage_account_id    = azurerm_storage_account.audit.id
  container_access_type = "private"
}

# Writers: read, list, create and overwrite blobs (tftrail's create-only writes and the
# checkpoint's compare-and-swap); no delete. Overwriting a retained version is not possible:
# it creates a new version.
resource "azurerm_role_definition" "writer" {
  name        = "tftrail log writer (${var.account_name})"
  scope       = data.azurerm_resource_group.audit.id
  description = "Append to a tftrail log: read, create and overwrite blobs only."

  permissions {
    actions = [
      "Microsoft.Storage/storageAccounts/blobServices/containers/read",
    ]
    data_actions = [
      "Microsoft.Storage/storageAccounts/blobServices/containers/blobs/read",
      "Microsoft.Storage/storageAccounts/blobServices/containers/blobs/write",
      "Microsoft.Storage/storageAccounts/blobServices/containers/blobs/add/action",
    ]
  }

  assignable_scopes = [data.azurerm_resource_group.audit.id]
}

resource "azurerm_role_assignment" "writer" {
  for_each           = toset(var.writer_principal_ids)
  scope              = azurerm_storage_container.audit.id
  role_definition_id = azurerm_role_definition.writer.role_definition_resource_id
  principal_id       = each.value
}

resource "azurerm_role_assignment" "reader" {
  for_each             = toset(var.reader_principal_ids)
  scope                = azurerm_storage_container.audit.id
  role_definition_name = "Storage Blob Data Reader"
  principal_id         = each.value
}

output "store" {
  value = "az://${azurerm_storage_container.audit.name}/log"
}

output "environment" {
  description = "The variables tftrail (object_store) needs besides an Entra ID credential."
  value       = "AZURE_STORAGE_ACCOUNT_NAME=${azurerm_storage_account.audit.name}"
}
