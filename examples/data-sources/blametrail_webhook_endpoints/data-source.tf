data "blametrail_webhook_endpoints" "all" {}

# Endpoints the relay disabled by itself (failing or gone receivers).
output "disabled_by_relay" {
  value = [
    for e in data.blametrail_webhook_endpoints.all.endpoints : { id = e.id, name = e.name, reason = e.disabled_reason }
    if !e.active && e.disabled_reason != "manual"
  ]
}
