# Bring the signing secret from Vault without storing it in the state (Terraform 1.11 or
# later). Bump signing_secret_wo_version after changing the secret in Vault: the relay rotates
# to it, and the previous secret keeps signing for previous_secret_ttl.
ephemeral "vault_kv_secret_v2" "webhook" {
  mount = "secret"
  name  = "blametrail/dashboard"
}

resource "blametrail_webhook_endpoint" "dashboard" {
  url                       = "https://ops.example.com/blametrail-webhook"
  name                      = "Internal Dashboard"
  signing_secret_wo         = ephemeral.vault_kv_secret_v2.webhook.data.signing_secret
  signing_secret_wo_version = 3
}
