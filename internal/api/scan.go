package api

import (
	"encoding/json"
	"fmt"
)

// scanObject calls fn with each top-level member of a JSON object. It walks the bytes once
// after json.Valid has vouched for them, so it needs no error handling of its own beyond
// "not an object": this is the ingest hot path, where building a map of RawMessages cost more
// than the validation itself. A key with escapes is unquoted the slow way; others are used
// as they are (so are non-ASCII ones, to match encoding/json exactly).
func scanObject(body []byte, fn func(key string, raw []byte) error) error {
	if !json.Valid(body) {
		var v any
		return fmt.Errorf("%w: %s", ErrMalformed, jsonErrorMessage(json.Unmarshal(body, &v)))
	}
	i := skipSpace(body, 0)
	if i >= len(body) || body[i] != '{' {
		return fmt.Errorf("%w: body must be a JSON object", ErrMalformed)
	}
	i = skipSpace(body, i+1)
	if body[i] == '}' {
		return nil
	}
	for {
		end := skipString(body, i)
		key := string(body[i+1 : end-1])
		for _, c := range body[i+1 : end-1] {
			if c == '\\' || c >= 0x80 { // escapes, and UTF-8 that encoding/json would repair
				_ = json.Unmarshal(body[i:end], &key)
				break
			}
		}
		i = skipSpace(body, end)
		i = skipSpace(body, i+1) // past ':'
		vend := skipValue(body, i)
		if err := fn(key, body[i:vend]); err != nil {
			return err
		}
		i = skipSpace(body, vend)
		if body[i] == '}' {
			return nil
		}
		i = skipSpace(body, i+1) // past ','
	}
}

func skipSpace(b []byte, i int) int {
	for i < len(b) && (b[i] == ' ' || b[i] == '\t' || b[i] == '\n' || b[i] == '\r') {
		i++
	}
	return i
}

// skipString returns the index after the string that starts at b[i] == '"'.
func skipString(b []byte, i int) int {
	for i++; i < len(b); i++ {
		switch b[i] {
		case '\\':
			i++
		case '"':
			return i + 1
		}
	}
	return len(b)
}

// skipValue returns the index after the value that starts at b[i].
func skipValue(b []byte, i int) int {
	switch b[i] {
	case '"':
		return skipString(b, i)
	case '{', '[':
		depth := 0
		for ; i < len(b); i++ {
			switch b[i] {
			case '"':
				i = skipString(b, i) - 1
			case '{', '[':
				depth++
			case '}', ']':
				if depth--; depth == 0 {
					return i + 1
				}
			}
		}
		return len(b)
	}
	for i < len(b) && b[i] != ',' && b[i] != '}' && b[i] != ']' && b[i] != ' ' && b[i] != '\t' && b[i] != '\n' && b[i] != '\r' {
		i++
	}
	return i
}
