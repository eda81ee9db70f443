package bench

import (
	"math"
	"slices"
	"strconv"
	"strings"
	"time"
)

// Latency summarises a set of latency samples. Durations are nanoseconds in memory and
// milliseconds in JSON.
type Latency struct {
	N    int     `json:"n"`
	P50  float64 `json:"p50_ms"`
	P90  float64 `json:"p90_ms"`
	P99  float64 `json:"p99_ms"`
	Max  float64 `json:"max_ms"`
	Mean float64 `json:"mean_ms"`
}

// Percentile returns the nearest-rank p-th percentile (0 < p <= 100) of sorted, which must be
// in ascending order: the smallest sample such that at least p% of the samples are <= it.
// It returns 0 for no samples; p <= 0 gives the minimum and p >= 100 the maximum.
func Percentile(sorted []int64, p float64) int64 {
	n := len(sorted)
	if n == 0 {
		return 0
	}
	if p <= 0 {
		return sorted[0]
	}
	if p >= 100 {
		return sorted[n-1]
	}
	rank := int(math.Ceil(p / 100 * float64(n)))
	// Floating point can land a hair above an exact rank (e.g. 0.29*100); clamp.
	rank = min(max(rank, 1), n)
	return sorted[rank-1]
}

// Summarize sorts samples (nanoseconds) in place and returns their summary.
func Summarize(samples []int64) Latency {
	if len(samples) == 0 {
		return Latency{}
	}
	slices.Sort(samples)
	var sum float64
	for _, s := range samples {
		sum += float64(s)
	}
	return Latency{
		N:    len(samples),
		P50:  nsToMS(Percentile(samples, 50)),
		P90:  nsToMS(Percentile(samples, 90)),
		P99:  nsToMS(Percentile(samples, 99)),
		Max:  nsToMS(samples[len(samples)-1]),
		Mean: sum / float64(len(samples)) / 1e6,
	}
}

func nsToMS(ns int64) float64 { return float64(ns) / 1e6 }

// Rate is count per second over d; 0 when d is not positive.
func Rate(count int64, d time.Duration) float64 {
	if d <= 0 {
		return 0
	}
	return float64(count) / d.Seconds()
}

// Ratio returns a/b, and false when b is zero or either is not a finite number, so a missing
// baseline prints as "n/a" instead of Inf.
func Ratio(a, b float64) (float64, bool) {
	if b == 0 || math.IsNaN(a) || math.IsNaN(b) || math.IsInf(a, 0) || math.IsInf(b, 0) {
		return 0, false
	}
	return a / b, true
}

// FormatRatio prints a ratio with three significant digits and a multiplication sign
// ("0.312×", "1.50×", "12.3×"), or "n/a".
func FormatRatio(r float64, ok bool) string {
	if !ok {
		return "n/a"
	}
	return sig3(r) + "×"
}

// FormatValue prints v with its unit in a compact, readable form: thousands separators for
// rates and counts, three significant digits for milliseconds and seconds, MiB for bytes.
func FormatValue(v float64, unit string) string {
	switch unit {
	case "/s":
		return group(int64(math.Round(v))) + "/s"
	case "count", "":
		return group(int64(math.Round(v)))
	case "ms":
		return sig3(v) + " ms"
	case "s":
		return sig3(v) + " s"
	case "µs":
		return sig3(v) + " µs"
	case "MiB":
		return sig3(v) + " MiB"
	case "%":
		return sig3(v) + "%"
	}
	return sig3(v) + " " + unit
}

// sig3 formats v with three significant digits, without exponent for the range we print.
func sig3(v float64) string {
	if v == 0 {
		return "0"
	}
	if math.IsNaN(v) || math.IsInf(v, 0) {
		return strconv.FormatFloat(v, 'f', -1, 64)
	}
	a := math.Abs(v)
	switch {
	case a >= 1000:
		return group(int64(math.Round(v)))
	case a >= 100:
		return strconv.FormatFloat(v, 'f', 0, 64)
	case a >= 10:
		return strconv.FormatFloat(v, 'f', 1, 64)
	case a >= 1:
		return strconv.FormatFloat(v, 'f', 2, 64)
	}
	// Below 1: three significant digits.
	digits := 2 - int(math.Floor(math.Log10(a)))
	return strconv.FormatFloat(v, 'f', min(digits, 9), 64)
}

// group prints n with commas between thousands: 1234567 → "1,234,567".
func group(n int64) string {
	s := strconv.FormatInt(n, 10)
	neg := strings.HasPrefix(s, "-")
	if neg {
		s = s[1:]
	}
	var b strings.Builder
	if neg {
		b.WriteByte('-')
	}
	for i, c := range s {
		if i > 0 && (len(s)-i)%3 == 0 {
			b.WriteByte(',')
		}
		b.WriteRune(c)
	}
	return b.String()
}
