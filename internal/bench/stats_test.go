package bench

import (
	"encoding/json"
	"math"
	"testing"
	"time"
)

func TestPercentile(t *testing.T) {
	hundred := make([]int64, 100)
	for i := range hundred {
		hundred[i] = int64(i + 1) // 1..100
	}
	tests := []struct {
		name   string
		sorted []int64
		p      float64
		want   int64
	}{
		{"empty", nil, 50, 0},
		{"one sample, p50", []int64{7}, 50, 7},
		{"one sample, p99", []int64{7}, 99, 7},
		{"p0 is the minimum", []int64{3, 5, 9}, 0, 3},
		{"p100 is the maximum", []int64{3, 5, 9}, 100, 9},
		{"above 100 is the maximum", []int64{3, 5, 9}, 150, 9},
		{"p50 of two: nearest rank takes the lower", []int64{10, 20}, 50, 10},
		{"p51 of two", []int64{10, 20}, 51, 20},
		{"p50 of 1..100", hundred, 50, 50},
		{"p99 of 1..100", hundred, 99, 99},
		{"p99.9 of 1..100", hundred, 99.9, 100},
		{"p1 of 1..100", hundred, 1, 1},
		{"p29 of 1..100 (float rounding)", hundred, 29, 29},
		{"p90 of ten", []int64{1, 2, 3, 4, 5, 6, 7, 8, 9, 10}, 90, 9},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := Percentile(tt.sorted, tt.p); got != tt.want {
				t.Errorf("Percentile(%v, %v) = %d, want %d", tt.sorted, tt.p, got, tt.want)
			}
		})
	}
}

func TestSummarize(t *testing.T) {
	if got := Summarize(nil); got != (Latency{}) {
		t.Errorf("Summarize(nil) = %+v, want zero", got)
	}
	// 1..1000 ms, shuffled: Summarize must sort.
	s := make([]int64, 1000)
	for i := range s {
		s[i] = int64((i*7919)%1000+1) * int64(time.Millisecond)
	}
	got := Summarize(s)
	want := Latency{N: 1000, P50: 500, P90: 900, P99: 990, Max: 1000, Mean: 500.5}
	if got != want {
		t.Errorf("Summarize = %+v, want %+v", got, want)
	}
	b, _ := json.Marshal(got)
	if string(b) != `{"n":1000,"p50_ms":500,"p90_ms":900,"p99_ms":990,"max_ms":1000,"mean_ms":500.5}` {
		t.Errorf("JSON = %s", b)
	}
}

func TestRatio(t *testing.T) {
	tests := []struct {
		a, b   float64
		want   float64
		wantOK bool
		text   string
	}{
		{3, 10, 0.3, true, "0.300×"},
		{1, 3, 1.0 / 3, true, "0.333×"},
		{15, 10, 1.5, true, "1.50×"},
		{123.4, 10, 12.34, true, "12.3×"},
		{5000, 2, 2500, true, "2,500×"},
		{0.004, 4, 0.001, true, "0.00100×"},
		{0, 10, 0, true, "0×"},
		{5, 0, 0, false, "n/a"},
		{math.NaN(), 1, 0, false, "n/a"},
		{1, math.Inf(1), 0, false, "n/a"},
	}
	for _, tt := range tests {
		got, ok := Ratio(tt.a, tt.b)
		if ok != tt.wantOK || math.Abs(got-tt.want) > 1e-12 {
			t.Errorf("Ratio(%v, %v) = %v, %v; want %v, %v", tt.a, tt.b, got, ok, tt.want, tt.wantOK)
		}
		if s := FormatRatio(got, ok); s != tt.text {
			t.Errorf("FormatRatio(Ratio(%v, %v)) = %q, want %q", tt.a, tt.b, s, tt.text)
		}
	}
}

func TestFormatValue(t *testing.T) {
	tests := []struct {
		v    float64
		unit string
		want string
	}{
		{123456.7, "/s", "123,457/s"},
		{999.4, "/s", "999/s"},
		{0, "/s", "0/s"},
		{1234567, "count", "1,234,567"},
		{-1234, "count", "-1,234"},
		{0.3284, "ms", "0.328 ms"},
		{17.56, "ms", "17.6 ms"},
		{2336.2, "ms", "2,336 ms"},
		{2.7, "s", "2.70 s"},
		{98.14, "µs", "98.1 µs"},
		{511.9, "MiB", "512 MiB"},
		{0.5, "×", "0.500 ×"},
	}
	for _, tt := range tests {
		if got := FormatValue(tt.v, tt.unit); got != tt.want {
			t.Errorf("FormatValue(%v, %q) = %q, want %q", tt.v, tt.unit, got, tt.want)
		}
	}
}

func TestRate(t *testing.T) {
	if got := Rate(5000, 2*time.Second); got != 2500 {
		t.Errorf("Rate = %v, want 2500", got)
	}
	if got := Rate(5, 0); got != 0 {
		t.Errorf("Rate over no time = %v, want 0", got)
	}
}
