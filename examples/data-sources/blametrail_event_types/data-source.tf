data "blametrail_event_types" "all" {}

# Subscribe to every type this relay lists, spelled out (so the plan shows each one).
resource "blametrail_webhook_endpoint" "audit" {
  url         = "https://audit.example.com/blametrail"
  name        = "Audit log"
  event_types = data.blametrail_event_types.all.subscribable_event_types
}
