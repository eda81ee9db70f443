# Rotate the signing secret every quarter: changing rotate_secret_on gives the endpoint a new
# secret in place, and the previous one keeps signing for previous_secret_ttl, so receivers
# can switch to the new secret without rejecting a delivery.
resource "blametrail_webhook_endpoint" "dashboard" {
  url                 = "https://ops.example.com/blametrail-webhook"
  name                = "Internal Dashboard"
  rotate_secret_on    = "2026-q3"
  previous_secret_ttl = "48h"
}
