package relay

import (
	"encoding"
	"fmt"
	"log/slog"
	"reflect"
)

// ReplaceLogAttr is the relay's slog.HandlerOptions.ReplaceAttr: a value logged through a
// pointer is logged as what it points to. The text handler prints other values with %+v,
// which turns a *string into an address (disabled_reason=0x308b0b0a6190) and a *struct
// into &{…}; a nil pointer is logged as nil. Pointers that know how to print themselves (a
// Stringer, an error, a TextMarshaler, a LogValuer) are left alone.
func ReplaceLogAttr(_ []string, a slog.Attr) slog.Attr {
	if a.Value.Kind() != slog.KindAny {
		return a
	}
	v := a.Value.Any()
	for {
		switch v.(type) {
		case nil, fmt.Stringer, error, encoding.TextMarshaler, slog.LogValuer:
			return slog.Any(a.Key, v)
		}
		rv := reflect.ValueOf(v)
		if rv.Kind() != reflect.Pointer {
			return slog.Any(a.Key, v)
		}
		if rv.IsNil() {
			return slog.Any(a.Key, nil)
		}
		v = rv.Elem().Interface()
	}
}

// logOptional is a *string fit for a log attribute: its value, or nil.
func logOptional(p *string) any {
	if p == nil {
		return nil
	}
	return *p
}
