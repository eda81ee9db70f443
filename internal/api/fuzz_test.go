package api_test

import (
	"bytes"
	"encoding/json"
	"errors"
	"strings"
	"testing"
	"time"
	"unicode/utf8"

	"github.com/blametrail/terraform-provider-blametrail/internal/api"
	"github.com/blametrail/terraform-provider-blametrail/internal/netpolicy"
)

// Run with: go test -run '^$' -fuzz FuzzParseIngest -fuzztime 15s ./internal/api

func FuzzParseIngest(f *testing.F) {
	for _, s := range []string{
		`{"type":"incident.opened","data":{}}`,
		`{"type":"deploy.ingested","data":{"a":[1,{"b":null}]},"id":"k"}`,
		`{"type":"test.ping","data":{}}`,
		`{"type":"incident.opened","data":[]}`,
		`{"type":"incident.opened","data":null,"id":null}`,
		`{"type":"incident.opened","data": {"x":"\u0000"}}`,
		`{"type":"incident.opened","data":{},"id":""}`,
		`{"type":"incident.opened","type":"x","data":{}}`,
		`{"type":"incident.opened","data":{}} `,
		"{\"type\":\"incident.opened\",\"data\":{\"\xff\":1}}",
		`{`, `[]`, `null`, ``, `"x"`, `{"data":{}}`,
	} {
		f.Add([]byte(s))
	}
	for _, s := range api.HostileSeeds {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, body []byte) {
		in, err := api.ParseIngest(body)
		checkStrict(t, body, err)
		if err != nil {
			var ve *api.ValidationError
			if !errors.Is(err, api.ErrMalformed) && !errors.As(err, &ve) {
				t.Fatalf("error is neither malformed nor a validation error: %v", err)
			}
			if errors.As(err, &ve) && ve.Code == "" {
				t.Fatalf("validation error without a code: %v", err)
			}
			return
		}
		if !utf8.Valid(in.Data) || !api.StrictJSON(in.Data) {
			t.Fatalf("accepted data that is not UTF-8 JSON within the nesting limit: %q", in.Data)
		}
		if !api.IngestibleType(in.Type) {
			t.Fatalf("accepted type %q", in.Type)
		}
		if len(in.Data) == 0 || in.Data[0] != '{' || !json.Valid(in.Data) {
			t.Fatalf("accepted data %q", in.Data)
		}
		var obj map[string]json.RawMessage
		if err := json.Unmarshal(in.Data, &obj); err != nil {
			t.Fatalf("data is not an object: %v", err)
		}
		if len(in.IdempotencyKey) > 4*api.MaxIdempotencyLen || !utf8.ValidString(in.IdempotencyKey) {
			t.Fatalf("accepted id %q", in.IdempotencyKey)
		}
	})
}

func FuzzParseEndpoint(f *testing.F) {
	for _, s := range []string{
		`{"url":"https://a.example.com/h","name":"n"}`,
		`{"url":"http://127.0.0.1:8080/h","name":"n","description":null,"event_types":null,"active":false}`,
		`{"url":"https://[::1]/","name":"n","event_types":["incident.opened","incident.opened"]}`,
		`{"url":"https://169.254.169.254/","name":" "}`,
		`{"url":"https://xn--nxasmq6b.example/","name":"\u0007"}`,
		`{"url":"https://a.example.com:99999/","name":"n"}`,
		`{"event_types":["test.ping"]}`,
		`{"active":"yes"}`,
		`{}`, `{`, `[]`, ``,
		"{\"url\":\"https://a.example.com/h\",\"name\":\"Caf\xe9\"}",
		`{"url":"https://a.example.com/h","name":"\ud800"}`,
		`{"url":"https://a.example.com/h","name":"\ud83d\ude00","description":"\udfff"}`,
		"{\"url\":\"https://a.example.com/\xff\",\"name\":\"n\"}",
		`{"event_types":` + strings.Repeat("[", 65) + strings.Repeat("]", 65) + `}`,
		"{\"\xed\xa0\x80\":1}",
	} {
		f.Add([]byte(s), false, false)
		f.Add([]byte(s), true, true)
	}
	f.Fuzz(func(t *testing.T, body []byte, allowHTTP, allowPrivate bool) {
		p := netpolicyFor(allowHTTP, allowPrivate)
		for _, parse := range []func([]byte) (api.EndpointInput, error){
			func(b []byte) (api.EndpointInput, error) { return api.ParseCreateEndpoint(b, p) },
			func(b []byte) (api.EndpointInput, error) { return api.ParsePatchEndpoint(b, p) },
		} {
			in, err := parse(body)
			checkStrict(t, body, err)
			if err != nil {
				var ve *api.ValidationError
				if !errors.Is(err, api.ErrMalformed) && !errors.As(err, &ve) {
					t.Fatalf("error is neither malformed nor a validation error: %v", err)
				}
				continue
			}
			if in.URL != nil && p.CheckURL(*in.URL) != nil {
				t.Fatalf("accepted url %q that the policy refuses", *in.URL)
			}
			if in.Name != nil && (utf8.RuneCountInString(*in.Name) > api.MaxNameLen || *in.Name == "") {
				t.Fatalf("accepted name %q", *in.Name)
			}
			if in.EventTypes != nil {
				seen := map[string]bool{}
				for _, typ := range *in.EventTypes {
					if !api.IngestibleType(typ) || seen[typ] {
						t.Fatalf("accepted event types %q", *in.EventTypes)
					}
					seen[typ] = true
				}
			}
		}
	})
}

// strictCode reports whether code is one of the rules StrictJSON checks.
func strictCode(code string) bool {
	switch code {
	case api.CodeInvalidUTF8, api.CodeNestingTooDeep, api.CodeDuplicateKey, api.CodeNumberOutOfRange:
		return true
	}
	return false
}

func netpolicyFor(allowHTTP, allowPrivate bool) netpolicy.Policy {
	return netpolicy.Policy{AllowHTTP: allowHTTP, AllowPrivate: allowPrivate}
}

// checkStrict asserts the rules encoding/json does not apply on a parser's result: an object
// that encoding/json accepts but StrictJSON does not is refused with one of their codes at a
// plausible offset, and no body StrictJSON accepts is refused for them.
func checkStrict(t *testing.T, body []byte, err error) {
	t.Helper()
	if !json.Valid(body) {
		if err == nil {
			t.Fatalf("accepted a body encoding/json refuses: %q", body)
		}
		return
	}
	if api.StrictJSON(body) {
		var ve *api.ValidationError
		if errors.As(err, &ve) && strictCode(ve.Code) {
			t.Fatalf("%s for a body StrictJSON accepts: %v: %q", ve.Code, err, body)
		}
		return
	}
	if b := bytes.TrimSpace(body); len(b) == 0 || b[0] != '{' {
		if !errors.Is(err, api.ErrMalformed) {
			t.Fatalf("err = %v for a body that is not an object, want ErrMalformed: %q", err, body)
		}
		return
	}
	var ve *api.ValidationError
	if !errors.As(err, &ve) || !strictCode(ve.Code) {
		t.Fatalf("err = %v, want invalid_utf8, nesting_too_deep, duplicate_key or number_out_of_range, for %q", err, body)
	}
	if !api.PlausibleProblem(body, ve.Code, ve.Offset) {
		t.Fatalf("%s at offset %d of %q", ve.Code, ve.Offset, body)
	}
}

// FuzzParseRecover: any body is parsed or refused with a validation or malformed error, never
// a panic, and a parsed since is UTC.
func FuzzParseRecover(f *testing.F) {
	for _, s := range []string{`{"since":"2026-11-26T15:00:00Z"}`, `{"since":"2026-11-26T15:00:00.123+02:00"}`, `{"since":null}`,
		`{}`, ``, `{"since":1}`, `{"since":"x","since":"y"}`, `{"since":"2026-11-26T15:00:00Z","a":1}`, `[`, "{\"since\":\"\xff\"}"} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, b []byte) {
		in, err := api.ParseRecover(b)
		if err != nil {
			var ve *api.ValidationError
			if !errors.As(err, &ve) && !errors.Is(err, api.ErrMalformed) {
				t.Fatalf("error of an unexpected kind: %T %v", err, err)
			}
			return
		}
		if in.Since.Location() != time.UTC {
			t.Fatalf("since not UTC: %v", in.Since)
		}
	})
}
