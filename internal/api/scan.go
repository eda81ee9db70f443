package api

import (
	"bytes"
	"encoding/json"
	"fmt"
	"math"
	"strconv"
	"strings"
	"unicode/utf8"
)

// MaxNestingDepth is how deeply the value of a request body's member may nest objects and
// arrays: "data":{} is one level, "data":{"a":[1]} two. The body's own object is not counted,
// so a delivery, which wraps data in one more object, nests at most MaxNestingDepth+1 levels.
const MaxNestingDepth = 64

// Codes of the validation errors the scan reports, with the body's byte offset of the problem.
const (
	CodeInvalidUTF8      = "invalid_utf8"
	CodeNestingTooDeep   = "nesting_too_deep"
	CodeDuplicateKey     = "duplicate_key"
	CodeNumberOutOfRange = "number_out_of_range"
)

// member is a top-level member of the body: its quoted key and its raw value.
type member struct {
	keyStart, keyEnd int
	keyEscaped       bool
	valStart, valEnd int
}

// What a scan can find wrong; scanOK is nothing.
const (
	scanOK = iota
	scanSyntax
	scanBadUTF8
	scanLoneSurrogate
	scanTooDeep
	scanDuplicateKey
	scanNumberRange
)

// scanObject calls fn with each top-level member of a JSON object, in order.
//
// One pass over the bytes does all of the checking: JSON syntax (the grammar encoding/json
// accepts), UTF-8 (RFC 8259: no invalid bytes, overlong forms or raw surrogates, and no \u
// escape of a lone surrogate; a high-low pair is fine), nesting (MaxNestingDepth), and the two
// I-JSON rules (RFC 7493) whose breach receivers' parsers answer differently: a name twice in
// one object (last wins in Go, Python and JavaScript, an error in serde or a strict Jackson;
// and the relay would act on one while a receiver reads the other), and a number beyond a
// 64-bit float's range (encoding/json refuses it, JavaScript reads Infinity: a receiver that
// fails on it fails every retry, and its endpoint is disabled for an event it cannot read).
// Bodies whose open objects hold a few dozen names allocate nothing. The first problem in the
// body wins: a syntax error is
// ErrMalformed (with encoding/json's message), the others are a *ValidationError with the
// byte offset in the body and the top-level member it is in. fn runs only for a body that
// passed, so no member is acted on before the whole body is known to be good.
func scanObject(body []byte, fn func(key string, raw []byte) error) error {
	var buf [8]member
	ms, kind, off := scanMembers(body, buf[:0])
	if kind != scanOK {
		return scanError(body, ms, kind, off)
	}
	for _, m := range ms {
		if err := fn(memberKey(body, m), body[m.valStart:m.valEnd]); err != nil {
			return err
		}
	}
	return nil
}

// memberKey unquotes a key; escapes are rare and take the slow way. The scan has vouched for
// its bytes, so a key without escapes is used as it is.
func memberKey(body []byte, m member) string {
	if !m.keyEscaped {
		return string(body[m.keyStart+1 : m.keyEnd-1])
	}
	var key string
	_ = json.Unmarshal(body[m.keyStart:m.keyEnd], &key)
	return key
}

// scanMembers checks body and appends its top-level members to ms. On a problem it returns
// its kind and byte offset (for a syntax error, an offset that is only approximate).
func scanMembers(b []byte, ms []member) ([]member, int, int) {
	// open[d] is the bracket of the d-th open container; open[0] is the body's own '{'.
	var open [MaxNestingDepth + 1]byte
	var keyBuf [32]keySpan
	nm := names{b: b, keys: keyBuf[:0]}
	var (
		n      = len(b)
		depth  int
		i      int
		c      byte
		kind   int
		escape bool
		start  int
	)
	i = skipSpace(b, 0)
	if i >= n || b[i] != '{' {
		return ms, scanSyntax, i
	}
	open[0], depth = '{', 1
	nm.open(0)
	i = skipSpace(b, i+1)
	if i < n && b[i] == '}' {
		i++
		goto end
	}
key:
	if i >= n || b[i] != '"' {
		return ms, scanSyntax, i
	}
	start = i
	if i, escape, kind = scanString(b, i); kind != scanOK {
		return ms, kind, i
	}
	if !nm.add(depth-1, keySpan{start: int32(start), end: int32(i), escaped: escape}) {
		return ms, scanDuplicateKey, start
	}
	if depth == 1 {
		ms = append(ms, member{keyStart: start, keyEnd: i, keyEscaped: escape})
	}
	i = skipSpace(b, i)
	if i >= n || b[i] != ':' {
		return ms, scanSyntax, i
	}
	i = skipSpace(b, i+1)
	if depth == 1 {
		ms[len(ms)-1].valStart = i
	}
value:
	if i >= n {
		return ms, scanSyntax, i
	}
	switch c = b[i]; c {
	case '{', '[':
		if depth > MaxNestingDepth {
			return ms, scanTooDeep, i
		}
		open[depth] = c
		if c == '{' {
			nm.open(depth)
		}
		depth++
		i = skipSpace(b, i+1)
		if i < n && b[i] == c+2 { // '{'+2 is '}', '['+2 is ']'
			i++
			depth--
			goto after
		}
		if c == '{' {
			goto key
		}
		goto value
	case '"':
		if i, _, kind = scanString(b, i); kind != scanOK {
			return ms, kind, i
		}
	case 't':
		if !hasLiteral(b, i, "true") {
			return ms, scanSyntax, i
		}
		i += 4
	case 'f':
		if !hasLiteral(b, i, "false") {
			return ms, scanSyntax, i
		}
		i += 5
	case 'n':
		if !hasLiteral(b, i, "null") {
			return ms, scanSyntax, i
		}
		i += 4
	default:
		var ok, exp bool
		start = i
		if i, ok, exp = scanNumber(b, i); !ok {
			return ms, scanSyntax, i
		}
		if (exp || i-start > 300) && !floatRange(b[start:i]) {
			return ms, scanNumberRange, start
		}
	}
after:
	// A value ended at i: at depth 1 it is a member's.
	if depth == 1 {
		ms[len(ms)-1].valEnd = i
	}
	i = skipSpace(b, i)
	if i >= n {
		return ms, scanSyntax, i
	}
	switch c = open[depth-1]; b[i] {
	case ',':
		i = skipSpace(b, i+1)
		if c == '{' {
			goto key
		}
		goto value
	case c + 2:
		i++
		if c == '{' {
			nm.close(depth - 1)
		}
		if depth--; depth > 0 {
			goto after
		}
	default:
		return ms, scanSyntax, i
	}
end:
	if i = skipSpace(b, i); i != n {
		return ms, scanSyntax, i
	}
	return ms, scanOK, 0
}

// plain[c] is true for the bytes a string holds as they are: printable ASCII but '"' and '\'.
var plain = func() (t [256]bool) {
	for c := 0x20; c < 0x80; c++ {
		t[c] = c != '"' && c != '\\'
	}
	return t
}()

// scanString checks the string that starts at b[i] == '"' and returns the index after it and
// whether it has escapes; on a problem, its kind and offset.
func scanString(b []byte, i int) (int, bool, int) {
	escaped := false
	for i++; ; {
		for i < len(b) && plain[b[i]] {
			i++
		}
		if i >= len(b) {
			return i, escaped, scanSyntax
		}
		switch c := b[i]; {
		case c == '"':
			return i + 1, escaped, scanOK
		case c == '\\':
			escaped = true
			if i+1 >= len(b) {
				return i, escaped, scanSyntax
			}
			switch b[i+1] {
			case '"', '\\', '/', 'b', 'f', 'n', 'r', 't':
				i += 2
			case 'u':
				r := hex4(b, i+2)
				switch {
				case r < 0:
					return i, escaped, scanSyntax
				case r < 0xD800 || r > 0xDFFF:
					i += 6
				case r < 0xDC00 && i+12 <= len(b) && b[i+6] == '\\' && b[i+7] == 'u':
					// A high surrogate must be followed by a low one.
					if lo := hex4(b, i+8); lo < 0xDC00 || lo > 0xDFFF {
						return i, escaped, scanLoneSurrogate
					}
					i += 12
				default:
					return i, escaped, scanLoneSurrogate
				}
			default:
				return i, escaped, scanSyntax
			}
		case c < 0x20:
			return i, escaped, scanSyntax
		default: // c >= 0x80
			r, size := utf8.DecodeRune(b[i:])
			if r == utf8.RuneError && size == 1 {
				return i, escaped, scanBadUTF8
			}
			i += size
		}
	}
}

// hex4 returns the value of the four hex digits at b[i:], or -1.
func hex4(b []byte, i int) rune {
	if i+4 > len(b) {
		return -1
	}
	var r rune
	for _, c := range b[i : i+4] {
		switch {
		case '0' <= c && c <= '9':
			c -= '0'
		case 'a' <= c && c <= 'f':
			c -= 'a' - 10
		case 'A' <= c && c <= 'F':
			c -= 'A' - 10
		default:
			return -1
		}
		r = r<<4 | rune(c)
	}
	return r
}

func hasLiteral(b []byte, i int, lit string) bool {
	return len(b)-i >= len(lit) && string(b[i:i+len(lit)]) == lit
}

// scanNumber checks the number at b[i:] (-?(0|[1-9][0-9]*)(\.[0-9]+)?([eE][+-]?[0-9]+)?) and
// returns the index after it and whether it has an exponent.
func scanNumber(b []byte, i int) (int, bool, bool) {
	if i < len(b) && b[i] == '-' {
		i++
	}
	switch {
	case i < len(b) && b[i] == '0':
		i++
	case i < len(b) && '1' <= b[i] && b[i] <= '9':
		i = skipDigits(b, i+1)
	default:
		return i, false, false
	}
	if i < len(b) && b[i] == '.' {
		if i++; i >= len(b) || b[i] < '0' || b[i] > '9' {
			return i, false, false
		}
		i = skipDigits(b, i)
	}
	if i < len(b) && (b[i] == 'e' || b[i] == 'E') {
		if i++; i < len(b) && (b[i] == '+' || b[i] == '-') {
			i++
		}
		if i >= len(b) || b[i] < '0' || b[i] > '9' {
			return i, false, false
		}
		return skipDigits(b, i), true, true
	}
	return i, true, false
}

// floatRange reports whether a number's magnitude fits a 64-bit float (below 2^1024; a number
// too small for one reads as 0, which every parser does alike). Only numbers with an exponent
// or over 300 characters can be out of it, so the scan asks only for those.
func floatRange(num []byte) bool {
	f, _ := strconv.ParseFloat(string(num), 64)
	return !math.IsInf(f, 0)
}

func skipDigits(b []byte, i int) int {
	for i < len(b) && '0' <= b[i] && b[i] <= '9' {
		i++
	}
	return i
}

func skipSpace(b []byte, i int) int {
	for i < len(b) && (b[i] == ' ' || b[i] == '\t' || b[i] == '\n' || b[i] == '\r') {
		i++
	}
	return i
}

// scanError turns what scanMembers found at off into the error callers see. ms holds the
// members seen so far: a problem is in the value of the last one while that value has not
// ended; otherwise it is in a top-level key, which has no field to name.
func scanError(body []byte, ms []member, kind, off int) error {
	if kind == scanSyntax {
		return malformed(body)
	}
	field, where := "", "a member name"
	if k := len(ms) - 1; k >= 0 && ms[k].valEnd == 0 && off >= ms[k].valStart {
		field = memberKey(body, ms[k])
		where = truncate(field, 64)
	}
	switch kind {
	case scanBadUTF8:
		return &ValidationError{Code: CodeInvalidUTF8, Field: field, Offset: off, Message: fmt.Sprintf(
			"%s is not valid UTF-8: byte 0x%02X at byte offset %d (request bodies must be UTF-8 JSON, RFC 8259)",
			where, body[off], off)}
	case scanLoneSurrogate:
		return &ValidationError{Code: CodeInvalidUTF8, Field: field, Offset: off, Message: fmt.Sprintf(
			"%s is not valid UTF-8: lone surrogate escape %s at byte offset %d (a \\uD800-\\uDFFF escape must be a high-low pair; request bodies must be UTF-8 JSON, RFC 8259)",
			where, body[off:off+6], off)}
	case scanDuplicateKey:
		end, _, _ := scanString(body, off)
		name := strings.Clone((&names{b: body}).name(keySpan{start: int32(off), end: int32(end), escaped: bytes.IndexByte(body[off:end], '\\') >= 0}))
		if field == "" { // a top-level name: the body's own object
			field, where = name, "the body"
		}
		return &ValidationError{Code: CodeDuplicateKey, Field: field, Offset: off, Message: fmt.Sprintf(
			"%s has the member name %q twice in one object, the second at byte offset %d (names must be unique: RFC 8259 section 4, RFC 7493)",
			where, truncate(name, 64), off)}
	case scanNumberRange:
		end, _, _ := scanNumber(body, off)
		return &ValidationError{Code: CodeNumberOutOfRange, Field: field, Offset: off, Message: fmt.Sprintf(
			"%s has a number beyond the range of a 64-bit float (about ±1.8e308) at byte offset %d: %s (receivers' JSON parsers cannot all read it; send it as a string)",
			where, off, truncate(string(body[off:end]), 32))}
	default:
		return &ValidationError{Code: CodeNestingTooDeep, Field: field, Offset: off, Message: fmt.Sprintf(
			"%s nests objects and arrays deeper than %d levels: level %d opens at byte offset %d",
			where, MaxNestingDepth, MaxNestingDepth+1, off)}
	}
}

// malformed is the 400 for a body that is not a JSON object, worded as before the scan was
// hand-written: encoding/json's message for a syntax error.
func malformed(body []byte) error {
	if i := skipSpace(body, 0); i == len(body) {
		return fmt.Errorf("%w: body is empty, expected a JSON object", ErrMalformed)
	}
	var v any
	err := json.Unmarshal(body, &v)
	if err == nil {
		return fmt.Errorf("%w: body must be a JSON object", ErrMalformed)
	}
	return fmt.Errorf("%w: %s", ErrMalformed, jsonErrorMessage(err))
}
