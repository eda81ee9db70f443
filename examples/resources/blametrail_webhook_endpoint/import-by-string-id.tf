import {
  to = blametrail_webhook_endpoint.dashboard
  id = "ep_01jdq3v8k2m4n6p8r0s2t4v6w8"
}
