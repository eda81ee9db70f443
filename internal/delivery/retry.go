package delivery

import (
	"errors"
	"fmt"
	"math/rand/v2"
	"net/http"
	"strconv"
	"strings"
	"time"
)

// DefaultSchedule is the delay before retries 1..5: ×6 each step, about a day in all.
var DefaultSchedule = []time.Duration{
	time.Minute, 6 * time.Minute, 36 * time.Minute, 3*time.Hour + 36*time.Minute, 21*time.Hour + 36*time.Minute,
}

// ErrBadSchedule is a retry schedule that cannot be used.
var ErrBadSchedule = errors.New("invalid retry schedule")

// ParseSchedule reads "1m,6m,36m": one positive Go duration per retry, at most 20.
func ParseSchedule(s string) ([]time.Duration, error) {
	parts := strings.Split(s, ",")
	if len(parts) > 20 {
		return nil, fmt.Errorf("%w: %d retries, at most 20", ErrBadSchedule, len(parts))
	}
	out := make([]time.Duration, 0, len(parts))
	for _, p := range parts {
		d, err := time.ParseDuration(strings.TrimSpace(p))
		if err != nil {
			return nil, fmt.Errorf("%w: %q: %v", ErrBadSchedule, p, err)
		}
		if d <= 0 || d > 7*24*time.Hour {
			return nil, fmt.Errorf("%w: %q must be more than 0 and at most 168h", ErrBadSchedule, p)
		}
		out = append(out, d)
	}
	return out, nil
}

// jitter spreads a delay by ±10% so endpoints that failed together do not retry together.
func jitter(d time.Duration) time.Duration {
	return time.Duration(float64(d) * (0.9 + 0.2*rand.Float64()))
}

// retryDelay is how long to wait after failed attempt n (1-based), or false when the
// schedule is used up. retryAfter (0 = none) comes from a 429 or 503: the wait is at least
// that long, but never more than twice the scheduled delay, so a receiver cannot park a
// delivery for ever.
func retryDelay(schedule []time.Duration, n int, retryAfter time.Duration) (time.Duration, bool) {
	if n < 1 || n > len(schedule) {
		return 0, false
	}
	base := schedule[n-1]
	d := jitter(base)
	if retryAfter > 0 {
		d = max(d, min(retryAfter, 2*base))
	}
	return d, true
}

// parseRetryAfter reads a Retry-After value: delay-seconds or an HTTP date. 0 = absent or bad.
func parseRetryAfter(v string, now time.Time) time.Duration {
	v = strings.TrimSpace(v)
	if v == "" {
		return 0
	}
	if secs, err := strconv.ParseInt(v, 10, 64); err == nil {
		if secs <= 0 {
			return 0
		}
		return time.Duration(min(secs, int64(365*24*3600))) * time.Second
	}
	if t, err := http.ParseTime(v); err == nil && t.After(now) {
		return t.Sub(now)
	}
	return 0
}
