# Read the endpoint's current signing secret without storing it in the plan or state
# (Terraform 1.10 or later), and hand it to a secret store through a write-only attribute.
ephemeral "blametrail_webhook_secret" "dashboard" {
  endpoint_id = blametrail_webhook_endpoint.dashboard.id
}

resource "aws_secretsmanager_secret_version" "dashboard_webhook" {
  secret_id                = aws_secretsmanager_secret.dashboard_webhook.id
  secret_string_wo         = ephemeral.blametrail_webhook_secret.dashboard.secret
  secret_string_wo_version = 1
}
