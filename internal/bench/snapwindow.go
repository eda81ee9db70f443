package bench

import (
	"bytes"
	"cmp"
	"encoding/json"
	"slices"
	"time"
)

// The relay logs one line per snapshot it writes:
//
//	{"time":"…","level":"INFO","msg":"snapshot written","bytes":N,"replay_from_segment":N,
//	 "segments_removed":N,"capture":"1.2ms","duration":"2.5s"}
//
// time is when the snapshot ended (the line is logged last), duration the whole snapshot and
// capture the part of it that held the store's lock. The harness turns these lines into time
// windows [time − duration, time] and looks at the ingest POSTs that overlapped them.

// SnapshotWindow is one snapshot the relay logged.
type SnapshotWindow struct {
	End      time.Time     `json:"end"`
	Duration time.Duration `json:"duration_ns"`
	Capture  time.Duration `json:"capture_ns"`
	Bytes    int64         `json:"bytes"`
}

// Start is End − Duration.
func (w SnapshotWindow) Start() time.Time { return w.End.Add(-w.Duration) }

var snapshotMsg = []byte(`"snapshot written"`)

// parseSnapshotLine reads a relay JSON log line; ok is false unless it is a well-formed
// "snapshot written" line.
func parseSnapshotLine(line []byte) (SnapshotWindow, bool) {
	if !bytes.Contains(line, snapshotMsg) {
		return SnapshotWindow{}, false
	}
	var e struct {
		Time     time.Time `json:"time"`
		Msg      string    `json:"msg"`
		Bytes    int64     `json:"bytes"`
		Capture  string    `json:"capture"`
		Duration string    `json:"duration"`
	}
	if json.Unmarshal(line, &e) != nil || e.Msg != "snapshot written" || e.Time.IsZero() {
		return SnapshotWindow{}, false
	}
	d, err := time.ParseDuration(e.Duration)
	if err != nil || d < 0 {
		return SnapshotWindow{}, false
	}
	c, err := time.ParseDuration(e.Capture)
	if err != nil || c < 0 {
		return SnapshotWindow{}, false
	}
	return SnapshotWindow{End: e.Time, Duration: d, Capture: c, Bytes: e.Bytes}, true
}

// span is one ingest POST: sent (or due, when paced) and answered, unix ns.
type span struct{ start, end int64 }

// SnapshotIngest is what ingest looked like while snapshots ran.
type SnapshotIngest struct {
	Snapshots     int     `json:"snapshots"`              // snapshots the relay logged in the scenario
	Overlapping   int     `json:"snapshots_during_posts"` // of which overlapped at least one ingest POST
	MaxCaptureMS  float64 `json:"longest_capture_ms"`     // lock held to copy the state
	MaxDurationMS float64 `json:"longest_duration_ms"`    // whole snapshot
	MaxBytes      int64   `json:"largest_bytes"`

	Requests  int     `json:"ingest_posts_overlapping"` // POSTs overlapping a snapshot window
	P99MS     float64 `json:"ingest_p99_ms"`            // of those POSTs' POST→answer times
	MaxPostMS float64 `json:"longest_post_ms"`          // longest of those POSTs
	MaxGapMS  float64 `json:"longest_completion_gap_ms"`
	StallMS   float64 `json:"longest_stall_ms"` // max(longest POST, longest gap)

	// The same phases' POSTs that overlapped no snapshot: what ingest looked like otherwise.
	OutsideRequests int     `json:"ingest_posts_outside"`
	OutsideP99MS    float64 `json:"ingest_p99_outside_ms"`
}

// overlaps reports whether [s1, e1] and [s2, e2] share an instant.
func overlaps(s1, e1, s2, e2 int64) bool { return s1 <= e2 && s2 <= e1 }

// snapshotIngest measures the ingest POSTs of each phase (a run of RunLoad: gaps are only
// looked for within a phase, so the pause between two phases is no stall) against the
// snapshot windows:
//
//   - a POST counts when [start, end] overlaps a window; the p99 and the longest are of those
//     (and the p99 of the others is kept to compare with);
//   - a completion gap is the time between two consecutive answers in a phase (any status,
//     sorted by answer time); it counts when it overlaps a window: a stretch in which no POST
//     finished while a snapshot ran, even if every POST by itself was quick.
//
// The stall is the larger of the longest POST and the longest gap. Phases' spans are sorted
// in place.
func snapshotIngest(windows []SnapshotWindow, phases ...[]span) SnapshotIngest {
	var r SnapshotIngest
	r.Snapshots = len(windows)
	ws := make([][2]int64, len(windows))
	for i, w := range windows {
		ws[i] = [2]int64{w.Start().UnixNano(), w.End.UnixNano()}
		r.MaxCaptureMS = max(r.MaxCaptureMS, nsToMS(int64(w.Capture)))
		r.MaxDurationMS = max(r.MaxDurationMS, nsToMS(int64(w.Duration)))
		r.MaxBytes = max(r.MaxBytes, w.Bytes)
	}
	slices.SortFunc(ws, func(a, b [2]int64) int { return cmp.Compare(a[0], b[0]) })
	// hit reports whether [s, e] overlaps any window, and marks the windows it overlaps.
	used := make([]bool, len(ws))
	hit := func(s, e int64) bool {
		found := false
		// Windows are few (tens): a linear scan is plenty.
		for i, w := range ws {
			if w[0] > e {
				break
			}
			if overlaps(s, e, w[0], w[1]) {
				used[i] = true
				found = true
			}
		}
		return found
	}
	var lat, outside []int64
	var maxPost, maxGap int64
	for _, p := range phases {
		slices.SortFunc(p, func(a, b span) int { return cmp.Compare(a.end, b.end) })
		for i, sp := range p {
			if hit(sp.start, sp.end) {
				d := sp.end - sp.start
				lat = append(lat, d)
				maxPost = max(maxPost, d)
			} else {
				outside = append(outside, sp.end-sp.start)
			}
			if i > 0 {
				if prev := p[i-1].end; hit(prev, sp.end) {
					maxGap = max(maxGap, sp.end-prev)
				}
			}
		}
	}
	for _, u := range used {
		if u {
			r.Overlapping++
		}
	}
	r.Requests = len(lat)
	if len(lat) > 0 {
		slices.Sort(lat)
		r.P99MS = nsToMS(Percentile(lat, 99))
	}
	r.OutsideRequests = len(outside)
	if len(outside) > 0 {
		slices.Sort(outside)
		r.OutsideP99MS = nsToMS(Percentile(outside, 99))
	}
	r.MaxPostMS = nsToMS(maxPost)
	r.MaxGapMS = nsToMS(maxGap)
	r.StallMS = max(r.MaxPostMS, r.MaxGapMS)
	return r
}
