resource "blametrail_webhook_endpoint" "dashboard" {
  url         = "https://ops.example.com/blametrail-webhook"
  name        = "Internal Dashboard"
  description = "Incident timeline on the ops dashboard."
  event_types = ["incident.opened", "incident.resolved"]
}

# Every event type, now and in later relay versions: leave event_types out.
resource "blametrail_webhook_endpoint" "archive" {
  url  = "https://archive.example.com/events"
  name = "Event archive"
}

# Hand the signing secret to the receiver, e.g. as a secret of its deployment.
output "dashboard_signing_secret" {
  value     = blametrail_webhook_endpoint.dashboard.signing_secret
  sensitive = true
}
