# A configuration a newcomer can plan and apply with no provider download: only the built-in
# `terraform_data` resource, variables and outputs. Used by run.sh and by tftrail's tests.

variable "environment" {
  type    = string
  default = "demo"
}

variable "api_token" {
  type      = string
  sensitive = true
  # A made-up secret with a default, to show that tftrail never stores it.
  default = "qs-not-a-real-token-7d41"
}

resource "terraform_data" "network" {
  input = {
    name = "${var.environment}-network"
    cidr = "10.0.0.0/16"
  }
}

resource "terraform_data" "app" {
  input = {
    name    = "${var.environment}-app"
    network = terraform_data.network.output.name
    token   = var.api_token
  }
}

output "app_name" {
  value = terraform_data.app.output.name
}

output "api_token" {
  value     = var.api_token
  sensitive = true
}
