package api

import (
	"bytes"
	"encoding/json"
	"math"
	"strconv"
	"strings"
	"unicode/utf8"
)

// StrictJSON is the fuzz tests' oracle for the rules encoding/json does not apply: for a body
// that encoding/json accepts, it reports whether the body is also UTF-8 (no invalid bytes, no
// escaped lone surrogate), nests at most MaxNestingDepth levels below its own object, names no
// member twice in one object, and has no number beyond a 64-bit float's range. It is written
// apart from the scanner (encoding/json's token stream, a separate escape walk) so the two
// check each other.
func StrictJSON(b []byte) bool {
	if !utf8.Valid(b) {
		return false
	}
	dec := json.NewDecoder(bytes.NewReader(b))
	dec.UseNumber()
	type frame struct {
		names     map[string]bool // nil in an array
		expectKey bool
	}
	var stack []frame
	valueDone := func() {
		if n := len(stack); n > 0 && stack[n-1].names != nil {
			stack[n-1].expectKey = true
		}
	}
	prev := 0
	for {
		tok, err := dec.Token()
		if err != nil {
			return true // io.EOF: the caller has checked that b is valid JSON
		}
		end := int(dec.InputOffset())
		switch tok := tok.(type) {
		case json.Delim:
			switch tok {
			case '{', '[':
				if len(stack) > MaxNestingDepth {
					return false
				}
				f := frame{}
				if tok == '{' {
					f = frame{names: map[string]bool{}, expectKey: true}
				}
				stack = append(stack, f)
			default:
				stack = stack[:len(stack)-1]
				valueDone()
			}
		case string:
			raw := b[prev:end]
			if hasLoneSurrogate(raw[bytes.IndexByte(raw, '"'):]) {
				return false
			}
			if n := len(stack); n > 0 && stack[n-1].names != nil && stack[n-1].expectKey {
				if stack[n-1].names[tok] {
					return false
				}
				stack[n-1].names[tok], stack[n-1].expectKey = true, false
			} else {
				valueDone()
			}
		case json.Number:
			if f, _ := strconv.ParseFloat(string(tok), 64); math.IsInf(f, 0) {
				return false
			}
			valueDone()
		default: // true, false, null
			valueDone()
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
// invalid UTF-8 sequence or a surrogate escape, an opening bracket, a name, or a number.
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
	case CodeDuplicateKey:
		return b[off] == '"'
	case CodeNumberOutOfRange:
		return b[off] == '-' || '1' <= b[off] && b[off] <= '9'
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
		ev(`{"a":1,"a":2}`), ev(`{"a":1,"\u0061":2}`), ev(`{"a":{"b":1},"c":{"b":2}}`), ev(`[{"a":1},{"a":1}]`),
		`{"type":"incident.opened","type":"deploy.ingested","data":{}}`,
		ev(`{"k":{"a":1,"b":2,"c":3,"d":4,"e":5,"f":6,"g":7,"h":8,"i":9,"j":10,"k":11,"l":12,"m":13,"n":14,"o":15,"p":16,"q":17,"a":18}}`),
		ev(`{"n":1e308,"m":-1.7976931348623157e308,"s":1e-999999}`), ev(`{"n":1e309}`), ev(`{"n":-2e308}`),
		ev(`{"n":1` + strings.Repeat("0", 308) + `}`), ev(`{"n":1` + strings.Repeat("0", 309) + `}`), ev(`{"n":0.` + strings.Repeat("0", 400) + `1}`),
	}
}()
