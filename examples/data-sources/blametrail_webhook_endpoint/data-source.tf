# Read an endpoint managed elsewhere, e.g. to give its signing secret to a receiver.
data "blametrail_webhook_endpoint" "dashboard" {
  id = "ep_01jdq3v8k2m4n6p8r0s2t4v6w8"
}

output "dashboard_url" {
  value = data.blametrail_webhook_endpoint.dashboard.url
}
