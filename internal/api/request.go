package api

import (
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"strconv"
	"strings"
	"unicode/utf8"

	"github.com/blametrail/terraform-provider-blametrail/internal/netpolicy"
)

// Field limits, shared with the Terraform provider's validators.
const (
	MaxNameLen        = 200
	MaxDescriptionLen = 1024
	MaxIdempotencyLen = 200
	DefaultPageLimit  = 50
	MaxPageLimit      = 250
)

// ErrMalformed marks a body that is not the JSON object a route expects (HTTP 400).
var ErrMalformed = errors.New("malformed request")

// ValidationError is a well-formed request that breaks a rule (HTTP 422).
type ValidationError struct {
	Code    string
	Field   string
	Message string
	// Offset is the 0-based byte offset in the request body of the problem, for the errors
	// the scan of the body's bytes finds (CodeInvalidUTF8, CodeNestingTooDeep); 0 otherwise.
	// The message names it too.
	Offset int
}

func (e *ValidationError) Error() string { return e.Message }

func invalid(code, field, format string, args ...any) *ValidationError {
	return &ValidationError{Code: code, Field: field, Message: fmt.Sprintf(format, args...)}
}

// EndpointInput is a parsed create or patch body. A nil field was absent.
type EndpointInput struct {
	URL         *string
	Name        *string
	Description *string
	EventTypes  *[]string
	Active      *bool
	// Secret is a signing secret the caller brings (create only, see ValidateSecret); nil
	// means the relay generates one.
	Secret *string
}

var endpointFields = map[string]bool{"url": true, "name": true, "description": true, "event_types": true, "active": true}

// ParseCreateEndpoint parses POST /api/webhooks/endpoints. url and name are required.
func ParseCreateEndpoint(body []byte, p netpolicy.Policy) (EndpointInput, error) {
	in, err := parseEndpoint(body, p, true)
	if err != nil {
		return in, err
	}
	if in.URL == nil {
		return in, invalid("invalid_url", "url", "url is required")
	}
	if in.Name == nil {
		return in, invalid("invalid_name", "name", "name is required")
	}
	return in, nil
}

// ParsePatchEndpoint parses PATCH /api/webhooks/endpoints/{id}; every field is optional.
func ParsePatchEndpoint(body []byte, p netpolicy.Policy) (EndpointInput, error) {
	return parseEndpoint(body, p, false)
}

// parseEndpoint parses an endpoint body; only a create (create) may bring a secret: it is
// changed by rotation, never by a patch.
func parseEndpoint(body []byte, p netpolicy.Policy, create bool) (EndpointInput, error) {
	var in EndpointInput
	obj := make(map[string]json.RawMessage, len(endpointFields))
	err := scanObject(body, func(key string, raw []byte) error {
		obj[key] = raw
		return nil
	})
	if err != nil {
		return in, err
	}
	for k := range obj {
		if endpointFields[k] || create && k == "secret" {
			continue
		}
		allowed := "url, name, description, event_types, active"
		if create {
			allowed += ", secret"
		}
		return in, invalid("unknown_field", k, "unknown field %q (allowed: %s)", k, allowed)
	}
	if raw, ok := obj["url"]; ok {
		var s string
		if err := decodeField(raw, &s); err != nil {
			return in, invalid("invalid_url", "url", "url must be a string")
		}
		if err := p.CheckURL(s); err != nil {
			return in, invalid("invalid_url", "url", "%s", err.Error())
		}
		in.URL = &s
	}
	if raw, ok := obj["name"]; ok {
		var s string
		if err := decodeField(raw, &s); err != nil {
			return in, invalid("invalid_name", "name", "name must be a string")
		}
		if err := ValidateName(s); err != nil {
			return in, err
		}
		in.Name = &s
	}
	if raw, ok := obj["description"]; ok {
		var s string
		if !isNull(raw) {
			if err := decodeField(raw, &s); err != nil {
				return in, invalid("invalid_description", "description", "description must be a string")
			}
			if err := ValidateDescription(s); err != nil {
				return in, err
			}
		}
		in.Description = &s
	}
	if raw, ok := obj["event_types"]; ok {
		types, err := parseEventTypes(raw)
		if err != nil {
			return in, err
		}
		in.EventTypes = &types
	}
	if raw, ok := obj["active"]; ok {
		var b bool
		if err := decodeField(raw, &b); err != nil {
			return in, invalid("invalid_active", "active", "active must be true or false")
		}
		in.Active = &b
	}
	if raw, ok := obj["secret"]; ok && !isNull(raw) {
		sec, err := parseSecretField(raw)
		if err != nil {
			return in, err
		}
		in.Secret = &sec
	}
	return in, nil
}

// parseEventTypes accepts null or an array of known, subscribable types; duplicates are
// dropped so the stored list behaves as the set Terraform declares.
func parseEventTypes(raw json.RawMessage) ([]string, error) {
	types := []string{}
	if isNull(raw) {
		return types, nil
	}
	var list []*string // a null element would decode as "", reported as an unknown type
	if err := decodeField(raw, &list); err != nil || slices.Contains(list, nil) {
		return nil, invalid("invalid_event_types", "event_types", "event_types must be an array of strings")
	}
	seen := make(map[string]bool, len(list))
	for _, p := range list {
		t := *p
		if t == TypeTestPing {
			return nil, invalid("invalid_event_types", "event_types",
				"test.ping cannot be subscribed to: it is sent only by POST /api/webhooks/endpoints/{id}/test, to any endpoint")
		}
		if !IngestibleType(t) {
			return nil, invalid("invalid_event_types", "event_types", "unknown event type %q (known: %s)",
				truncate(t, 64), strings.Join(EventTypes[:4], ", "))
		}
		if !seen[t] {
			seen[t] = true
			types = append(types, t)
		}
	}
	return types, nil
}

// IngestInput is a parsed POST /api/events body.
type IngestInput struct {
	Type string
	// Data is the raw JSON object as the source sent it; it is embedded verbatim in deliveries.
	Data []byte
	// IdempotencyKey is the caller's optional "id": a repeat returns the first result.
	IdempotencyKey string
}

// ParseIngest parses POST /api/events: {"type", "data", "id"?}.
func ParseIngest(body []byte) (IngestInput, error) {
	var in IngestInput
	var typ, data, id []byte
	err := scanObject(body, func(key string, raw []byte) error {
		switch key {
		case "type":
			typ = raw
		case "data":
			data = raw
		case "id":
			id = raw
		default:
			return invalid("unknown_field", key, "unknown field %q (allowed: type, data, id)", truncate(key, 64))
		}
		return nil
	})
	if err != nil {
		return in, err
	}
	if typ == nil {
		return in, invalid("invalid_event_type", "type", "type is required")
	}
	if err := decodeField(typ, &in.Type); err != nil {
		return in, invalid("invalid_event_type", "type", "type must be a string")
	}
	if in.Type == TypeTestPing {
		return in, invalid("invalid_event_type", "type", "test.ping is sent only by POST /api/webhooks/endpoints/{id}/test")
	}
	if !IngestibleType(in.Type) {
		return in, invalid("invalid_event_type", "type", "unknown event type %q (known: %s)",
			truncate(in.Type, 64), strings.Join(EventTypes[:4], ", "))
	}
	if data == nil {
		return in, invalid("invalid_data", "data", "data is required and must be a JSON object")
	}
	if data[0] != '{' {
		return in, invalid("invalid_data", "data", "data must be a JSON object")
	}
	in.Data = data
	if id != nil && !isNull(id) {
		if err := decodeField(id, &in.IdempotencyKey); err != nil {
			return in, invalid("invalid_id", "id", "id must be a string")
		}
		if in.IdempotencyKey == "" {
			return in, invalid("invalid_id", "id", "id must not be empty")
		}
		if err := checkText("id", in.IdempotencyKey, MaxIdempotencyLen, false); err != nil {
			return in, err
		}
	}
	return in, nil
}

// ParseLimit parses the limit query parameter; empty means DefaultPageLimit.
func ParseLimit(s string) (int, error) {
	if s == "" {
		return DefaultPageLimit, nil
	}
	n, err := strconv.Atoi(s)
	if err != nil || n < 1 || n > MaxPageLimit {
		return 0, invalid("invalid_limit", "limit", "limit must be an integer from 1 to %d", MaxPageLimit)
	}
	return n, nil
}

func decodeField(raw json.RawMessage, v any) error {
	if isNull(raw) {
		return errors.New("null")
	}
	return json.Unmarshal(raw, v)
}

func isNull(raw json.RawMessage) bool { return string(raw) == "null" }

// ValidateName is the rule for an endpoint's name: 1..MaxNameLen characters, not blank, no
// control characters but tab. The Terraform provider applies it at plan time.
func ValidateName(s string) error {
	if err := checkText("name", s, MaxNameLen, false); err != nil {
		return err
	}
	if strings.TrimSpace(s) == "" {
		return invalid("invalid_name", "name", "name must not be empty or only whitespace")
	}
	return nil
}

// ValidateDescription is the rule for a description: at most MaxDescriptionLen characters,
// no control characters but tab and newline.
func ValidateDescription(s string) error {
	return checkText("description", s, MaxDescriptionLen, true)
}

// checkText keeps control characters out of values that end up in logs, the UI and headers;
// only descriptions may span lines.
func checkText(field, s string, max int, multiline bool) error {
	code := "invalid_" + field
	if !utf8.ValidString(s) {
		return invalid(code, field, "%s must be valid UTF-8", field)
	}
	if n := utf8.RuneCountInString(s); n > max {
		return invalid(code, field, "%s must be at most %d characters (got %d)", field, max, n)
	}
	for _, r := range s {
		if r == '\n' && multiline || r == '\t' {
			continue
		}
		if r < 0x20 || r == 0x7f {
			return invalid(code, field, "%s must not contain control characters (found %U)", field, r)
		}
	}
	return nil
}

func jsonErrorMessage(err error) string {
	var se *json.SyntaxError
	if errors.As(err, &se) {
		return fmt.Sprintf("invalid JSON at byte %d: %s", se.Offset, se.Error())
	}
	return "invalid JSON: " + err.Error()
}

// truncate cuts s to at most n bytes, at a rune boundary so a message stays UTF-8.
func truncate(s string, n int) string {
	if len(s) <= n {
		return s
	}
	for n > 0 && !utf8.RuneStart(s[n]) {
		n--
	}
	return s[:n] + "…"
}
