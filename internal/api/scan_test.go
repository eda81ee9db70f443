package api

import (
	"bytes"
	"encoding/json"
	"testing"
)

// FuzzScanObject checks the hand-written member scanner against encoding/json: for every
// valid object both must see the same members with the same raw values (last one wins on a
// repeated key, as in encoding/json).
func FuzzScanObject(f *testing.F) {
	for _, s := range []string{
		`{}`, `{"a":1}`, ` { "a" : "x\"}" , "b":[1,{"c":"]"}], "d":null } `,
		`{"\u0061":true,"a":false}`, `{"type":"incident.opened","data":{"x":[1,2,{"y":"z"}]}}`, `[1]`, `"s"`,
	} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, b []byte) {
		got := map[string]json.RawMessage{}
		err := scanObject(b, func(k string, raw []byte) error { got[k] = raw; return nil })
		var want map[string]json.RawMessage
		werr := json.Unmarshal(b, &want)
		if (err == nil) != (werr == nil) {
			t.Fatalf("scanObject err=%v, encoding/json err=%v for %q", err, werr, b)
		}
		if err != nil {
			return
		}
		if len(got) != len(want) {
			t.Fatalf("members %v, want %v", got, want)
		}
		for k, w := range want {
			if !bytes.Equal(bytes.TrimSpace(got[k]), bytes.TrimSpace(w)) {
				t.Fatalf("member %q = %q, want %q", k, got[k], w)
			}
		}
	})
}
