package apiclient

import (
	"context"
	"net/url"

	"github.com/blametrail/terraform-provider-blametrail/internal/api"
)

// SecretRotation is the body of a rotation. Zero fields take the relay's defaults: a
// generated secret, and 24 h during which the previous secret still signs.
type SecretRotation struct {
	// ExpirePreviousIn is a Go duration ("24h", "0s" for at once), at most "168h".
	ExpirePreviousIn string `json:"expire_previous_in,omitempty"`
	// Secret is the new secret ("whsec_…") when the caller brings one.
	Secret string `json:"secret,omitempty"`
}

// RotateSecret gives an endpoint a new signing secret; the answer holds it and when the
// previous one stops signing.
func (c *Client) RotateSecret(ctx context.Context, id string, in SecretRotation) (api.SecretInfo, error) {
	var out api.SecretInfo
	err := c.do(ctx, "POST", endpointsPath+"/"+url.PathEscape(id)+"/secret/rotate", nil, in, &out)
	return out, err
}

// SecretInfo reads an endpoint's signing secret and, during a rotation's overlap, when the
// previous secret stops signing.
func (c *Client) SecretInfo(ctx context.Context, id string) (api.SecretInfo, error) {
	var out api.SecretInfo
	err := c.do(ctx, "GET", endpointsPath+"/"+url.PathEscape(id)+"/secret", nil, nil, &out)
	return out, err
}
