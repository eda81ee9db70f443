# Endpoints of the relay that runs beside the app (pod.yaml or compose.yaml).
#
# Terraform reaches the relay's admin API (--admin-listen) on 127.0.0.1:8081: compose.yaml
# publishes it there, and for the pod run `kubectl port-forward pod/app 8081:8081`. The token
# comes from the environment: export BLAMETRAIL_API_TOKEN=<the relay's API token> (not the
# ingest token, which can only post events). Then, in this directory:
#
#   terraform init && terraform apply    # the provider from the Terraform Registry
#
# With a provider you built yourself (`make provider`, and a CLI configuration with
# dev_overrides in TF_CLI_CONFIG_FILE, as in the README), run `terraform apply` without
# `terraform init`: Terraform uses bin/ as it is, and says so in a warning; init would
# look the provider up in the registry instead.

terraform {
  required_version = ">= 1.5.0"
  required_providers {
    blametrail = {
      source = "blametrail/blametrail"
    }
  }
}

variable "relay_endpoint" {
  description = "Base URL of the relay's admin API: its --admin-listen, or its --listen when that is unset."
  type        = string
  default     = "http://127.0.0.1:8081"
}

provider "blametrail" {
  endpoint = var.relay_endpoint
}

resource "blametrail_webhook_endpoint" "ops_dashboard" {
  url         = "https://ops.example.com/blametrail-webhook"
  name        = "Internal Dashboard"
  description = "Incident timeline on the ops dashboard."
  event_types = ["incident.opened", "incident.acknowledged", "incident.resolved"]
}

resource "blametrail_webhook_endpoint" "deploy_tracker" {
  url         = "https://ci.example.com/hooks/blametrail"
  name        = "Deploy tracker"
  event_types = ["deploy.ingested"]
}

output "endpoint_ids" {
  value = {
    ops_dashboard  = blametrail_webhook_endpoint.ops_dashboard.id
    deploy_tracker = blametrail_webhook_endpoint.deploy_tracker.id
  }
}

# The dashboard verifies deliveries with this: terraform output -raw ops_dashboard_signing_secret
output "ops_dashboard_signing_secret" {
  value     = blametrail_webhook_endpoint.ops_dashboard.signing_secret
  sensitive = true
}
