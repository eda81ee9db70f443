package api

import (
	"strings"
	"testing"
)

// BenchmarkParseIngest measures the ingest parser on a 1 KiB event; the baseline in the same
// run is a bare validity scan of the same bytes (json.Valid), the least any parser must do.
func BenchmarkParseIngest(b *testing.B) {
	body := []byte(`{"type":"incident.opened","id":"src-123","data":{"incident_id":"inc_1","title":"` +
		strings.Repeat("x", 950) + `"}}`)
	b.Run("ParseIngest", func(b *testing.B) {
		b.SetBytes(int64(len(body)))
		b.ReportAllocs()
		for b.Loop() {
			if _, err := ParseIngest(body); err != nil {
				b.Fatal(err)
			}
		}
	})
	b.Run("baseline-json.Valid", func(b *testing.B) {
		b.SetBytes(int64(len(body)))
		b.ReportAllocs()
		for b.Loop() {
			if !jsonValid(body) {
				b.Fatal("invalid")
			}
		}
	})
}
