package api

import (
	"strconv"
	"strings"
	"testing"
	"unicode/utf8"
)

// BenchmarkParseIngest measures the ingest parser on a 1 KiB event; the baseline in the same
// run is a bare validity scan of the same bytes (json.Valid), the least any parser must do.
func BenchmarkParseIngest(b *testing.B) {
	body := []byte(`{"type":"incident.opened","id":"src-123","data":{"incident_id":"inc_1","title":"` +
		strings.Repeat("x", 950) + `"}}`)
	benchIngest(b, body)
}

// BenchmarkParseIngestUTF8 is the same on a 1 KiB event of multi-byte text and escaped
// surrogate pairs, where every byte of a string takes the UTF-8 check's slow path; its
// baseline adds utf8.Valid to json.Valid, as a two-pass check would.
func BenchmarkParseIngestUTF8(b *testing.B) {
	body := []byte(`{"type":"incident.opened","id":"src-😀","data":{"incident_id":"inc_1","title":"` +
		strings.Repeat("é✓😀", 80) + `","esc":"` + strings.Repeat(`\ud83d\ude00`, 20) + `"}}`)
	benchIngest(b, body)
}

// BenchmarkParseIngestManyNames is the duplicate-name check's worst case within the body
// limit: one object of 25,000 names (about 256 KiB), which takes the check past its linear
// scan to a set of names.
func BenchmarkParseIngestManyNames(b *testing.B) {
	var sb strings.Builder
	sb.WriteString(`{"type":"incident.opened","data":{`)
	for i := range 25_000 {
		if i > 0 {
			sb.WriteByte(',')
		}
		sb.WriteString(`"k` + strconv.Itoa(i) + `":0`)
	}
	sb.WriteString(`}}`)
	benchIngest(b, []byte(sb.String()))
}

func benchIngest(b *testing.B, body []byte) {
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
	b.Run("baseline-json.Valid+utf8.Valid", func(b *testing.B) {
		b.SetBytes(int64(len(body)))
		b.ReportAllocs()
		for b.Loop() {
			if !jsonValid(body) || !utf8.Valid(body) {
				b.Fatal("invalid")
			}
		}
	})
}
