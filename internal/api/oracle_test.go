package api

import (
	"bytes"
	"encoding/json"
	"strconv"
	"strings"
	"unicode/utf8"
)

// StrictJSON is the fuzz tests' oracle for the rules encoding/json does not apply: for a body
// that encoding/json accepts, it reports whether the body is also UTF-8 (no invalid bytes, no
// escaped lone surrogate) and nests at most MaxNestingDepth levels below its own object. It is
// written apart from the scanner (encoding/json's token stream, a separate escape walk) so the
// two check each other.
func StrictJSON(b []byte) bool {
	if !utf8.Valid(b) {
		return false
	}
	dec := json.NewDecoder(bytes.NewReader(b))
	depth, prev := 0, 0
	for {
		tok, err := dec.Token()
		if err != nil {
			return true // io.EOF: the caller has checked that b is valid JSON
		}
		end := int(dec.InputOffset())
		switch tok := tok.(type) {
		case json.Delim:
			if tok == '{' || tok == '[' {
				if depth++; depth > MaxNestingDepth+1 {
					return false
				}
			} else {
				depth--
			}
		case string:
			raw := b[prev:end]
			if hasLoneSurrogate(raw[bytes.IndexByte(raw, '"'):]) {
				return false
			}
		}
		prev = end
	}
}

// hasLoneSurrogate walks the escapes of a quoted JSON string.
func hasLoneSurrogate(s []byte) bool {
	code := func(at int) uint64 {
		if at+6 > len(s) || s[at] != '\\' || s[at+1] != 'u' {
			return 0
		}
		v, _ := strconv.ParseUint(string(s[at+2:at+6]), 16, 32)
		return v
	}
	for j := 1; j < len(s)-1; j++ {
		if s[j] != '\\' {
			continue
		}
		v := code(j)
		switch {
		case v >= 0xD800 && v <= 0xDBFF:
			if w := code(j + 6); w >= 0xDC00 && w <= 0xDFFF {
				j += 11
				continue
			}
			return true
		case v >= 0xDC00 && v <= 0xDFFF:
			return true
		}
		j++ // past the escaped character
	}
	return false
}

// PlausibleProblem reports whether off in b is where a problem of that code can be: an
// invalid UTF-8 sequence or a surrogate escape, or an opening bracket.
func PlausibleProblem(b []byte, code string, off int) bool {
	if off <= 0 || off >= len(b) {
		return false
	}
	switch code {
	case CodeInvalidUTF8:
		if r, size := utf8.DecodeRune(b[off:]); r == utf8.RuneError && size == 1 {
			return true
		}
		if !bytes.HasPrefix(b[off:], []byte(`\u`)) || off+6 > len(b) {
			return false
		}
		v, err := strconv.ParseUint(string(b[off+2:off+6]), 16, 32)
		return err == nil && v >= 0xD800 && v <= 0xDFFF
	case CodeNestingTooDeep:
		return b[off] == '{' || b[off] == '['
	}
	return false
}

// HostileSeeds are fuzz seeds for the UTF-8 and nesting rules, as bodies of POST /api/events
// (the other fuzzers reuse their data values).
var HostileSeeds = func() []string {
	deep := func(n int) string { return strings.Repeat("[", n) + strings.Repeat("]", n) }
	ev := func(data string) string { return `{"type":"incident.opened","data":` + data + `}` }
	return []string{
		ev("{\"k\":\"\xff\"}"), ev("{\"k\":\"a\xfeb\"}"), ev("{\"k\":\"ab\x80\"}"),
		ev("{\"k\":\"\xe2\x82\"}"), ev("{\"k\":\"\xf0\x9f\x98\""), ev("{\"k\":\"\xc0\xaf\"}"),
		ev("{\"k\":\"\xe0\x80\x80\"}"), ev("{\"k\":\"\xed\xa0\x80\"}"), ev("{\"k\":\"\xf4\x90\x80\x80\"}"),
		ev("{\"\xff\":1}"), "{\"\xff\":1,\"type\":\"incident.opened\",\"data\":{}}",
		ev(`{"k":"\ud800"}`), ev(`{"k":"\udc00"}`), ev(`{"k":"\ud83d\u0041"}`), ev(`{"k":"\ud83d"}`),
		ev(`{"k":"\ude00\ud83d"}`), ev(`{"k":"\ud83d\ud83d\ude00"}`), ev(`{"k":"\\ud800"}`),
		ev(`{"k":"\ud83d\ude00","r":"😀"}`), ev(`{"k":"\uD83D\uDE00\uDBFF\uDFFF"}`),
		`{"type":"incident.opened","data":{},"id":"\ud800"}`,
		ev(`{"a":` + deep(63) + `}`), ev(`{"a":` + deep(64) + `}`), ev(`{"a":` + deep(3000) + `}`),
		ev(`{"a":` + strings.Repeat("[", 200)),
		`{"type":"incident.opened","data":{},"id":` + deep(65) + `}`,
	}
}()
