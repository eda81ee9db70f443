package api

import (
	"bytes"
	"encoding/json"
	"errors"
	"strings"
	"testing"
	"unicode/utf8"
)

// FuzzScanObject checks the hand-written scanner against encoding/json and, for the rules
// encoding/json does not apply (UTF-8, lone surrogate escapes, nesting, names twice in an
// object, numbers beyond a float's range), against StrictJSON: for every object both accept,
// both must see the same members with the same raw values; an object only encoding/json
// accepts must be refused with one of those rules' codes at a plausible offset; what
// encoding/json refuses must be refused, as malformed when no other rule can be at stake.
func FuzzScanObject(f *testing.F) {
	for _, s := range []string{
		`{}`, `{"a":1}`, ` { "a" : "x\"}" , "b":[1,{"c":"]"}], "d":null } `,
		`{"\u0061":true,"a":false}`, `{"type":"incident.opened","data":{"x":[1,2,{"y":"z"}]}}`, `[1]`, `"s"`,
		`{"a":-0.5e+10,"b":[true,false,null,"",{}],"c":1E3}`, `{"a":01}`, `{"a":1.}`, `{"a":tru}`,
		"{\"a\":\"\x1f\"}", `{"a":"\x"}`, `{"a":"\u12"}`, `{"a" 1}`, `{"a":1,}`, `{"a":[1,]}`, `{"a":1}}`,
	} {
		f.Add([]byte(s))
	}
	for _, s := range HostileSeeds {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, b []byte) {
		got := map[string]json.RawMessage{}
		err := scanObject(b, func(k string, raw []byte) error { got[k] = raw; return nil })
		var want map[string]json.RawMessage
		if werr := json.Unmarshal(b, &want); werr != nil {
			if err == nil {
				t.Fatalf("scanObject accepts what encoding/json refuses (%v): %q", werr, b)
			}
			// A name twice or a number out of range before the syntax error is the first problem.
			var ve *ValidationError
			if errors.As(err, &ve) && (ve.Code == CodeDuplicateKey || ve.Code == CodeNumberOutOfRange) {
				if !PlausibleProblem(b, ve.Code, ve.Offset) {
					t.Fatalf("%s at offset %d of %q", ve.Code, ve.Offset, b)
				}
				return
			}
			// With no byte above 0x7F, no \u and too few brackets to nest too deep, only
			// syntax can be wrong.
			if utf8.Valid(b) && !bytes.Contains(b, []byte(`\u`)) && bytes.Count(b, []byte("{"))+bytes.Count(b, []byte("[")) <= MaxNestingDepth+1 &&
				!errors.Is(err, ErrMalformed) {
				t.Fatalf("scanObject err = %v, want ErrMalformed like encoding/json's %v, for %q", err, werr, b)
			}
			return
		}
		if !StrictJSON(b) {
			var ve *ValidationError
			if !errors.As(err, &ve) || ve.Code != CodeInvalidUTF8 && ve.Code != CodeNestingTooDeep &&
				ve.Code != CodeDuplicateKey && ve.Code != CodeNumberOutOfRange {
				t.Fatalf("scanObject err = %v, want invalid_utf8, nesting_too_deep, duplicate_key or number_out_of_range, for %q", err, b)
			}
			if !PlausibleProblem(b, ve.Code, ve.Offset) {
				t.Fatalf("%s at offset %d of %q", ve.Code, ve.Offset, b)
			}
			return
		}
		if err != nil {
			t.Fatalf("scanObject err = %v for %q, which encoding/json and StrictJSON accept", err, b)
		}
		if len(got) != len(want) {
			t.Fatalf("members %v, want %v", got, want)
		}
		for k, w := range want {
			if !bytes.Equal(got[k], bytes.TrimSpace(w)) {
				t.Fatalf("member %q = %q, want %q", k, got[k], w)
			}
		}
	})
}

// TestScanObjectErrors: syntax errors are ErrMalformed with encoding/json's wording, the
// first problem in the body wins, and a refused body reaches no callback.
func TestScanObjectErrors(t *testing.T) {
	for _, tt := range []struct {
		body, want string // want: a part of the ErrMalformed message, or a 422 code
	}{
		{``, "body is empty"},
		{" \n\t", "body is empty"},
		{`[]`, "body must be a JSON object"},
		{`"\ud800"`, "body must be a JSON object"},
		{"\xef\xbb\xbf{}", "invalid JSON at byte"},
		{`{"a":1`, "invalid JSON"},
		{`{"a":1} {}`, "invalid JSON at byte"},
		{`{"a":1,"b":"` + "\x01" + `"}`, "invalid JSON at byte"},
		{`{"a":1,"b":"` + "\x01\xff" + `"}`, "invalid JSON at byte"},
		{`{"a":1,"b":"` + "\xff\x01" + `"}`, CodeInvalidUTF8},
		{`{"a":1,"b":` + strings.Repeat("[", 63) + `1}`, "invalid JSON at byte"},
		{`{"a":1,"b":` + strings.Repeat("[", 70), CodeNestingTooDeep},
		{`{"a":1,"a":2}`, CodeDuplicateKey},
		{`{"a":1,"b":{"c":1,"c":2},"a":3}`, CodeDuplicateKey},
		{`{"a":1,"b":{"c":1e999,"c":2}}`, CodeNumberOutOfRange},
		{`{"a":{"c":1,"c":2},"b":1e999}`, CodeDuplicateKey},
		{`{"a":1,"b":{"c":1,"c":2}`, CodeDuplicateKey},
		{`{"a":1e999,"b":{"c":1}`, CodeNumberOutOfRange},
		{`{"a":1e99,"b":{"c":1}`, "invalid JSON"},
	} {
		called := false
		err := scanObject([]byte(tt.body), func(string, []byte) error { called = true; return nil })
		var ve *ValidationError
		if errors.As(err, &ve) {
			if ve.Code != tt.want {
				t.Errorf("%q: err = %v (%s), want %q", tt.body, err, ve.Code, tt.want)
			}
		} else if !errors.Is(err, ErrMalformed) || !strings.Contains(err.Error(), tt.want) {
			t.Errorf("%q: err = %v, want ErrMalformed with %q", tt.body, err, tt.want)
		}
		if called {
			t.Errorf("%q: callback ran for a refused body", tt.body)
		}
	}
}
