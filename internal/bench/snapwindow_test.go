package bench

import (
	"testing"
	"time"
)

func TestParseSnapshotLine(t *testing.T) {
	end := time.Date(2026, 11, 26, 15, 0, 0, 123456789, time.UTC)
	tests := []struct {
		name string
		line string
		want SnapshotWindow
		ok   bool
	}{
		{"slog JSON line",
			`{"time":"2026-11-26T15:00:00.123456789Z","level":"INFO","msg":"snapshot written","bytes":314572800,"replay_from_segment":12,"segments_removed":3,"capture":"212.5ms","duration":"2.75s"}`,
			SnapshotWindow{End: end, Duration: 2750 * time.Millisecond, Capture: 212500 * time.Microsecond, Bytes: 314572800}, true},
		{"offset time, minutes in the duration",
			`{"time":"2026-11-26T16:00:00.123456789+01:00","level":"INFO","msg":"snapshot written","bytes":1,"capture":"850µs","duration":"1m2s"}`,
			SnapshotWindow{End: end, Duration: 62 * time.Second, Capture: 850 * time.Microsecond, Bytes: 1}, true},
		{"another message", `{"time":"2026-11-26T15:00:00Z","level":"INFO","msg":"relay listening","addr":"127.0.0.1:1"}`, SnapshotWindow{}, false},
		{"message only quoted in another field",
			`{"time":"2026-11-26T15:00:00Z","level":"ERROR","msg":"x","err":"\"snapshot written\"","capture":"1ms","duration":"1ms"}`, SnapshotWindow{}, false},
		{"text format", `time=2026-11-26T15:00:00Z level=INFO msg="snapshot written" bytes=1 capture=1ms duration=2ms`, SnapshotWindow{}, false},
		{"bad duration", `{"time":"2026-11-26T15:00:00Z","msg":"snapshot written","capture":"1ms","duration":"soon"}`, SnapshotWindow{}, false},
		{"no capture", `{"time":"2026-11-26T15:00:00Z","msg":"snapshot written","duration":"1ms"}`, SnapshotWindow{}, false},
		{"no time", `{"msg":"snapshot written","capture":"1ms","duration":"1ms"}`, SnapshotWindow{}, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, ok := parseSnapshotLine([]byte(tt.line))
			if ok != tt.ok || !got.End.Equal(tt.want.End) || got.Duration != tt.want.Duration ||
				got.Capture != tt.want.Capture || got.Bytes != tt.want.Bytes {
				t.Errorf("parseSnapshotLine = %+v, %v; want %+v, %v", got, ok, tt.want, tt.ok)
			}
			if ok && !got.Start().Equal(tt.want.End.Add(-tt.want.Duration)) {
				t.Errorf("Start = %v", got.Start())
			}
		})
	}
}

func TestSnapshotIngest(t *testing.T) {
	ms := func(n int64) int64 { return n * int64(time.Millisecond) }
	t0 := time.Unix(1_800_000_000, 0)
	// win is a snapshot from a to b ms after t0, with its lock held for c ms.
	win := func(a, b, c int64) SnapshotWindow {
		return SnapshotWindow{End: t0.Add(time.Duration(ms(b))), Duration: time.Duration(ms(b - a)),
			Capture: time.Duration(ms(c)), Bytes: b}
	}
	base := t0.UnixNano()
	// sp is a POST sent a ms and answered b ms after t0.
	sp := func(a, b int64) span { return span{base + ms(a), base + ms(b)} }
	// every10 is a POST every 10 ms from a to b ms, each taking d ms.
	every10 := func(a, b, d int64) []span {
		var s []span
		for x := a; x < b; x += 10 {
			s = append(s, sp(x, x+d))
		}
		return s
	}
	tests := []struct {
		name    string
		windows []SnapshotWindow
		phases  [][]span
		want    SnapshotIngest
	}{
		{"no snapshot", nil, [][]span{every10(0, 1000, 2)}, SnapshotIngest{OutsideRequests: 100, OutsideP99MS: 2}},
		{"snapshot after the posts",
			[]SnapshotWindow{win(2000, 3000, 5)}, [][]span{every10(0, 1000, 2)},
			SnapshotIngest{Snapshots: 1, MaxCaptureMS: 5, MaxDurationMS: 1000, MaxBytes: 3000,
				OutsideRequests: 100, OutsideP99MS: 2}},
		{"quick POSTs throughout: the 11 sent at 100..200 overlap [100, 200]",
			[]SnapshotWindow{win(100, 200, 3)}, [][]span{every10(0, 1000, 2)},
			SnapshotIngest{Snapshots: 1, Overlapping: 1, MaxCaptureMS: 3, MaxDurationMS: 100, MaxBytes: 200,
				Requests: 11, P99MS: 2, MaxPostMS: 2, MaxGapMS: 10, StallMS: 10, OutsideRequests: 89, OutsideP99MS: 2}},
		{"a POST that began before and ended after the window counts",
			[]SnapshotWindow{win(100, 200, 1)}, [][]span{{sp(50, 300)}},
			SnapshotIngest{Snapshots: 1, Overlapping: 1, MaxCaptureMS: 1, MaxDurationMS: 100, MaxBytes: 200,
				Requests: 1, P99MS: 250, MaxPostMS: 250, StallMS: 250}},
		{"touching at an instant overlaps",
			[]SnapshotWindow{win(100, 200, 1)}, [][]span{{sp(200, 201), sp(90, 100), sp(201, 202)}},
			SnapshotIngest{Snapshots: 1, Overlapping: 1, MaxCaptureMS: 1, MaxDurationMS: 100, MaxBytes: 200,
				Requests: 2, P99MS: 10, MaxPostMS: 10, MaxGapMS: 101, StallMS: 101, OutsideRequests: 1, OutsideP99MS: 1}},
		{"a gap with quick POSTs: no answer from 120 to 180",
			[]SnapshotWindow{win(100, 200, 1)},
			[][]span{append(append(every10(0, 120, 1), sp(178, 180)), every10(180, 300, 1)...)},
			SnapshotIngest{Snapshots: 1, Overlapping: 1, MaxCaptureMS: 1, MaxDurationMS: 100, MaxBytes: 200,
				Requests: 6, P99MS: 2, MaxPostMS: 2, MaxGapMS: 69, StallMS: 69, OutsideRequests: 19, OutsideP99MS: 1}},
		{"the pause between two phases is no stall",
			[]SnapshotWindow{win(1100, 1900, 1)},
			[][]span{every10(0, 1000, 1), every10(2000, 3000, 1)},
			SnapshotIngest{Snapshots: 1, MaxCaptureMS: 1, MaxDurationMS: 800, MaxBytes: 1900,
				OutsideRequests: 200, OutsideP99MS: 1}},
		{"two windows, p99 of the overlapping POSTs only, capture and duration maxima",
			[]SnapshotWindow{win(5000, 6000, 40), win(1000, 1500, 7), win(8000, 8100, 1)},
			[][]span{
				append(append(every10(0, 1000, 1), every10(1000, 1500, 20)...), every10(1500, 5000, 1)...),
				append(every10(5000, 5990, 3), sp(5990, 6090)),
			},
			SnapshotIngest{Snapshots: 3, Overlapping: 2, MaxCaptureMS: 40, MaxDurationMS: 1000, MaxBytes: 8100,
				// 50 slow + 1 in the first window, 100 in the second; the last POST's 100 ms
				// follow an answer at 5983: a gap of 107 ms.
				Requests: 50 + 1 + 100, P99MS: 20, MaxPostMS: 100, MaxGapMS: 107, StallMS: 107,
				OutsideRequests: 600 - 151, OutsideP99MS: 1}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := snapshotIngest(tt.windows, tt.phases...); got != tt.want {
				t.Errorf("snapshotIngest =\n %+v\nwant\n %+v", got, tt.want)
			}
		})
	}
}
