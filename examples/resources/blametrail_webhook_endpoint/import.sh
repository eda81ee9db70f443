# Import an endpoint by its id; the signing secret is read from the relay.
terraform import blametrail_webhook_endpoint.dashboard ep_01jdq3v8k2m4n6p8r0s2t4v6w8
