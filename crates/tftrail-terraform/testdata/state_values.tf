# The configuration behind state_values_v1.json and state_values_v2.json (Terraform 1.11.4):
#   terraform apply -var db_pw=first-secret-1111 -var region=eu-west-1           -> v1
#   terraform apply -var db_pw=second-secret-2222 -var region=us-east-2 -var extra=false -> v2

variable "db_pw" {
  type      = string
  sensitive = true
}
variable "region" {
  type = string
}
variable "extra" {
  type    = bool
  default = true
}

resource "terraform_data" "db" {
  input = {
    region   = var.region
    password = var.db_pw
    tags     = { team = "infra", env = "prod" }
  }
}

# A copy of the secret with its mark removed: the state does not mark it.
resource "terraform_data" "copy" {
  input = "conn=postgres://app:${nonsensitive(var.db_pw)}@db.internal/app"
}

# Named like a secret, but nothing marks it.
resource "terraform_data" "named" {
  input = {
    db_password = "named-secret-7777"
    size        = var.extra ? 2 : 3
  }
}

resource "terraform_data" "gone" {
  count = var.extra ? 1 : 0
  input = "only-in-v1"
}

output "pw" {
  value     = var.db_pw
  sensitive = true
}
output "region" {
  value = var.region
}
output "extra" {
  value = var.extra ? "yes" : null
}
output "named_copy" {
  value = terraform_data.named.input.db_password
}
