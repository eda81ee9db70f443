package provider

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"fmt"
	"net/http"
	"os"
	"strconv"
	"strings"
	"time"

	"github.com/hashicorp/terraform-plugin-framework/schema/validator"
	"github.com/hashicorp/terraform-plugin-log/tflog"

	"github.com/blametrail/terraform-provider-blametrail/internal/apiclient"
)

// Environment variables and defaults of the transport settings.
const (
	EnvRequestTimeout = "BLAMETRAIL_REQUEST_TIMEOUT"
	EnvMaxRetries     = "BLAMETRAIL_MAX_RETRIES"
	EnvCACertFile     = "BLAMETRAIL_CA_CERT_FILE"
	// EnvAppendUserAgent is Terraform's convention for adding to every provider's user agent.
	EnvAppendUserAgent = "TF_APPEND_USER_AGENT"

	DefaultRequestTimeout = 30 * time.Second
	DefaultMaxRetries     = 4
	maxMaxRetries         = 20
)

// parseRequestTimeout reads request_timeout: a Go duration such as "30s" or "2m", above zero.
func parseRequestTimeout(s string) (time.Duration, error) {
	d, err := time.ParseDuration(strings.TrimSpace(s))
	if err != nil || d <= 0 {
		return 0, fmt.Errorf("%q is not a duration above zero, such as 30s or 2m", s)
	}
	return d, nil
}

// parseMaxRetries reads max_retries: 0 (no retry) to maxMaxRetries.
func parseMaxRetries(s string) (int, error) {
	n, err := strconv.Atoi(strings.TrimSpace(s))
	if err != nil || n < 0 || n > maxMaxRetries {
		return 0, fmt.Errorf("%q is not a whole number from 0 to %d", s, maxMaxRetries)
	}
	return n, nil
}

// httpClient is the provider's HTTP client: timeout per request, and the CA certificates of
// caFile (PEM) trusted in addition to the system's, for a relay behind TLS with a private CA.
func httpClient(timeout time.Duration, caFile string) (*http.Client, error) {
	t := http.DefaultTransport.(*http.Transport).Clone()
	if caFile != "" {
		pem, err := os.ReadFile(caFile)
		if err != nil {
			return nil, fmt.Errorf("cannot read the CA certificate file: %w", err)
		}
		pool, err := x509.SystemCertPool()
		if err != nil {
			pool = x509.NewCertPool()
		}
		if !pool.AppendCertsFromPEM(pem) {
			return nil, fmt.Errorf("%s holds no PEM certificate (-----BEGIN CERTIFICATE-----)", caFile)
		}
		t.TLSClientConfig = &tls.Config{RootCAs: pool, MinVersion: tls.VersionTLS12}
	}
	return &http.Client{Timeout: timeout, Transport: t}, nil
}

// logRequest writes one debug line per request to the relay (TF_LOG=DEBUG): method, path,
// status and duration. The client hands it neither the token nor bodies nor the base URL.
func logRequest(ctx context.Context, l apiclient.RequestLog) {
	fields := map[string]any{
		"method":      l.Method,
		"path":        l.Path,
		"duration_ms": l.Duration.Milliseconds(),
		"attempt":     l.Attempt,
	}
	if l.Err != nil {
		fields["error"] = l.Err.Error()
	} else {
		fields["status"] = l.Status
	}
	tflog.Debug(ctx, "BlameTrail relay request", fields)
}

// durationValidator checks request_timeout at plan time.
type durationValidator struct{}

func (durationValidator) Description(context.Context) string {
	return "must be a duration above zero, such as 30s or 2m"
}

func (v durationValidator) MarkdownDescription(ctx context.Context) string { return v.Description(ctx) }

func (durationValidator) ValidateString(_ context.Context, req validator.StringRequest, resp *validator.StringResponse) {
	if req.ConfigValue.IsNull() || req.ConfigValue.IsUnknown() {
		return
	}
	if _, err := parseRequestTimeout(req.ConfigValue.ValueString()); err != nil {
		resp.Diagnostics.AddAttributeError(req.Path, "Invalid request timeout", "request_timeout "+err.Error()+".")
	}
}

// retriesValidator checks max_retries at plan time.
type retriesValidator struct{}

func (retriesValidator) Description(context.Context) string {
	return fmt.Sprintf("must be from 0 to %d", maxMaxRetries)
}

func (v retriesValidator) MarkdownDescription(ctx context.Context) string { return v.Description(ctx) }

func (retriesValidator) ValidateInt64(_ context.Context, req validator.Int64Request, resp *validator.Int64Response) {
	if req.ConfigValue.IsNull() || req.ConfigValue.IsUnknown() {
		return
	}
	if _, err := parseMaxRetries(strconv.FormatInt(req.ConfigValue.ValueInt64(), 10)); err != nil {
		resp.Diagnostics.AddAttributeError(req.Path, "Invalid max retries", "max_retries "+err.Error()+".")
	}
}
