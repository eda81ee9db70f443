package store

import (
	"testing"
	"unsafe"

	"github.com/blametrail/terraform-provider-blametrail/internal/api"
	"github.com/blametrail/terraform-provider-blametrail/internal/wal"
)

func TestPackedPos(t *testing.T) {
	for _, p := range []wal.Position{
		{}, {Segment: 1, Offset: 16}, {Segment: 1<<30 - 1, Offset: 1<<30 + 16<<20}, {Segment: 12345, Offset: 1<<34 - 1},
	} {
		if got := packPos(p).unpack(); got != p {
			t.Errorf("packPos(%+v).unpack() = %+v", p, got)
		}
		if packPos(p).segment() != p.Segment {
			t.Errorf("segment of %+v = %d", p, packPos(p).segment())
		}
	}
	if n := unsafe.Sizeof(event{}); n > 32 {
		t.Errorf("event is %d bytes: a million queued deliveries pay for every byte over 32", n)
	}
}

func TestTypeCodes(t *testing.T) {
	for _, typ := range append(append([]string(nil), api.EventTypes...), api.TypeTestPing, "custom.kind", "custom.kind") {
		if got := codeOf(typ).name(); got != typ {
			t.Errorf("codeOf(%q).name() = %q", typ, got)
		}
	}
	if codeOf("custom.kind") != codeOf("custom.kind") || codeOf("custom.kind") == codeOf(api.TypeIncidentOpened) {
		t.Error("a type does not keep one code, or two types share one")
	}
}
