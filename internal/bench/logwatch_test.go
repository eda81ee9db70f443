package bench

import (
	"testing"
	"time"
)

// TestLogWatch: lines are counted by level, warnings by message, non-JSON lines kept as a
// crash, snapshots parsed, and the tail kept in order.
func TestLogWatch(t *testing.T) {
	w := newLogWatch()
	for _, l := range []string{
		`{"time":"2026-01-02T03:04:05Z","level":"INFO","msg":"relay listening","addr":"127.0.0.1:1"}`,
		`{"time":"2026-01-02T03:04:06Z","level":"WARN","msg":"delivery failed","code":500}`,
		`{"time":"2026-01-02T03:04:07Z","level":"WARN","msg":"delivery failed","code":503}`,
		`{"time":"2026-01-02T03:04:08Z","level":"ERROR","msg":"snapshot failed"}`,
		`{"time":"2026-01-02T03:04:09Z","level":"INFO","msg":"snapshot written","bytes":10,"capture":"1ms","duration":"2s"}`,
		`panic: boom`,
	} {
		w.line([]byte(l))
	}
	s := w.Summary()
	if s.Lines != 6 || s.ByLevel["INFO"] != 2 || s.ByLevel["WARN"] != 2 || s.ByLevel["ERROR"] != 1 || s.ByLevel["non-json"] != 1 {
		t.Errorf("lines %d, by level %v", s.Lines, s.ByLevel)
	}
	if s.Warnings["delivery failed"] != 2 || s.Warnings["snapshot failed"] != 1 || len(s.Warnings) != 2 {
		t.Errorf("warnings %v", s.Warnings)
	}
	if len(s.Crash) != 1 || s.Crash[0] != "panic: boom" || len(s.Tail) != 6 || s.Tail[5] != "panic: boom" {
		t.Errorf("crash %q, tail %q", s.Crash, s.Tail)
	}
	w.mu.Lock()
	snaps := w.snaps
	w.mu.Unlock()
	if len(snaps) != 1 || snaps[0].Duration != 2*time.Second || snaps[0].Capture != time.Millisecond || snaps[0].Bytes != 10 {
		t.Errorf("snapshots %+v", snaps)
	}
}
