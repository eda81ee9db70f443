terraform {
  required_providers {
    blametrail = {
      source = "blametrail/blametrail"
    }
  }
}

# The relay's base URL and API token. Both may instead come from the environment:
# BLAMETRAIL_ENDPOINT and BLAMETRAIL_API_TOKEN.
provider "blametrail" {
  endpoint  = "http://127.0.0.1:8080"
  api_token = var.blametrail_api_token
}

variable "blametrail_api_token" {
  type      = string
  sensitive = true
}
