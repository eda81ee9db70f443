package delivery

import (
	"errors"
	"net/http"
	"slices"
	"testing"
	"time"
)

func TestParseSchedule(t *testing.T) {
	tests := []struct {
		in   string
		want []time.Duration
		ok   bool
	}{
		{"1m,6m,36m,3h36m,21h36m", DefaultSchedule, true},
		{"100ms,200ms,400ms,800ms,1600ms", []time.Duration{100 * time.Millisecond, 200 * time.Millisecond, 400 * time.Millisecond, 800 * time.Millisecond, 1600 * time.Millisecond}, true},
		{"10ms", []time.Duration{10 * time.Millisecond}, true},
		{" 1s , 2s ", []time.Duration{time.Second, 2 * time.Second}, true},
		{"168h", []time.Duration{168 * time.Hour}, true},
		{"1s,1s,1s,1s,1s,1s,1s,1s,1s,1s,1s,1s,1s,1s,1s,1s,1s,1s,1s,1s", slices.Repeat([]time.Duration{time.Second}, 20), true},
		{"", nil, false},
		{"1s,", nil, false},
		{",1s", nil, false},
		{"0s", nil, false},
		{"-1s", nil, false},
		{"168h1ns", nil, false},
		{"1", nil, false},
		{"soon", nil, false},
		{"1s;2s", nil, false},
		{"1s,1s,1s,1s,1s,1s,1s,1s,1s,1s,1s,1s,1s,1s,1s,1s,1s,1s,1s,1s,1s", nil, false},
	}
	for _, tt := range tests {
		got, err := ParseSchedule(tt.in)
		if tt.ok != (err == nil) {
			t.Errorf("ParseSchedule(%q) error = %v, want ok=%v", tt.in, err, tt.ok)
			continue
		}
		if err != nil && !errors.Is(err, ErrBadSchedule) {
			t.Errorf("ParseSchedule(%q) error %v does not wrap ErrBadSchedule", tt.in, err)
		}
		if !slices.Equal(got, tt.want) {
			t.Errorf("ParseSchedule(%q) = %v, want %v", tt.in, got, tt.want)
		}
	}
}

func TestJitterBounds(t *testing.T) {
	for _, d := range []time.Duration{time.Millisecond, 100 * time.Millisecond, time.Minute, 21*time.Hour + 36*time.Minute} {
		lo, hi := time.Duration(float64(d)*0.9), time.Duration(float64(d)*1.1)
		var minSeen, maxSeen time.Duration = hi, lo
		for range 2000 {
			j := jitter(d)
			if j < lo || j > hi {
				t.Fatalf("jitter(%s) = %s, outside ±10%%", d, j)
			}
			minSeen, maxSeen = min(minSeen, j), max(maxSeen, j)
		}
		// It does spread: over 2000 draws both halves of the band are hit.
		if minSeen >= d || maxSeen <= d {
			t.Errorf("jitter(%s) stayed within [%s, %s]", d, minSeen, maxSeen)
		}
	}
}

func TestRetryDelay(t *testing.T) {
	sched := []time.Duration{100 * time.Millisecond, 200 * time.Millisecond, 400 * time.Millisecond, 800 * time.Millisecond, 1600 * time.Millisecond}
	within := func(d, base time.Duration) bool {
		return d >= time.Duration(float64(base)*0.9) && d <= time.Duration(float64(base)*1.1)
	}
	tests := []struct {
		name       string
		n          int
		retryAfter time.Duration
		ok         bool
		check      func(time.Duration) bool
	}{
		{"first retry", 1, 0, true, func(d time.Duration) bool { return within(d, 100*time.Millisecond) }},
		{"last retry", 5, 0, true, func(d time.Duration) bool { return within(d, 1600*time.Millisecond) }},
		{"schedule used up", 6, 0, false, nil},
		{"n zero", 0, 0, false, nil},
		{"n negative", -1, 0, false, nil},
		{"retry-after shorter than the schedule is ignored", 3, 10 * time.Millisecond, true, func(d time.Duration) bool { return within(d, 400*time.Millisecond) }},
		{"retry-after longer is honoured", 1, 150 * time.Millisecond, true, func(d time.Duration) bool { return d >= 150*time.Millisecond && d <= 200*time.Millisecond }},
		{"retry-after capped at 2× the step", 2, time.Hour, true, func(d time.Duration) bool { return d == 400*time.Millisecond }},
		{"retry-after exactly 2× the step", 1, 200 * time.Millisecond, true, func(d time.Duration) bool { return d == 200*time.Millisecond }},
		{"retry-after on the last attempt does not add one", 6, time.Second, false, nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			for range 200 {
				d, ok := retryDelay(sched, tt.n, tt.retryAfter)
				if ok != tt.ok {
					t.Fatalf("retryDelay(n=%d) ok = %v, want %v", tt.n, ok, tt.ok)
				}
				if ok && !tt.check(d) {
					t.Fatalf("retryDelay(n=%d, retryAfter=%s) = %s", tt.n, tt.retryAfter, d)
				}
			}
		})
	}
	// With ±10% jitter the test schedule's gaps always grow.
	for range 1000 {
		prev := time.Duration(0)
		for n := 1; n <= len(sched); n++ {
			d, _ := retryDelay(sched, n, 0)
			if d <= prev {
				t.Fatalf("delay %d (%s) not above delay %d (%s)", n, d, n-1, prev)
			}
			prev = d
		}
	}
	if _, ok := retryDelay(nil, 1, 0); ok {
		t.Error("an empty schedule allows a retry")
	}
}

func TestParseRetryAfter(t *testing.T) {
	now := time.Date(2026, 11, 26, 15, 0, 0, 0, time.UTC)
	tests := []struct {
		in   string
		want time.Duration
	}{
		{"", 0},
		{"1", time.Second},
		{" 120 ", 2 * time.Minute},
		{"0", 0},
		{"-5", 0},
		{"1.5", 0},
		{"soon", 0},
		{"99999999999999999999", 0}, // does not fit: treated as garbage
		{"999999999", 365 * 24 * time.Hour},
		{now.Add(90 * time.Second).Format(http.TimeFormat), 90 * time.Second},
		{now.Add(-time.Minute).Format(http.TimeFormat), 0},
		{now.Format(http.TimeFormat), 0},
		{"Thursday, 26-Nov-26 15:00:30 GMT", 30 * time.Second}, // RFC 850
		{"Thu Nov 26 15:00:10 2026", 10 * time.Second},         // ANSI C
		{"Thu, 26 Nov 2026 15:00:30", 0},                       // no zone
	}
	for _, tt := range tests {
		if got := parseRetryAfter(tt.in, now); got != tt.want {
			t.Errorf("parseRetryAfter(%q) = %s, want %s", tt.in, got, tt.want)
		}
	}
}
