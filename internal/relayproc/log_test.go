package relayproc

import (
	"strings"
	"testing"
)

func TestLogBounded(t *testing.T) {
	l := NewLog(100)
	var all strings.Builder
	for i := range 1000 {
		line := strings.Repeat(string(rune('a'+i%26)), 9) + "\n"
		all.WriteString(line)
		_, _ = l.Write([]byte(line))
		if n := len(l.String()); n > 200 {
			t.Fatalf("after %d lines the log holds %d bytes, want at most 200", i+1, n)
		}
	}
	got := l.String()
	if !strings.HasSuffix(all.String(), got) || len(got) < 100 {
		t.Errorf("the log holds %q: want at least the last 100 bytes written", got)
	}
	if l.Dropped()+int64(len(got)) != int64(all.Len()) {
		t.Errorf("dropped %d + kept %d != written %d", l.Dropped(), len(got), all.Len())
	}
	for _, line := range strings.SplitAfter(got, "\n") {
		if line != "" && len(line) != 10 {
			t.Errorf("a cut line: %q", line)
		}
	}
}

func TestLogUnbounded(t *testing.T) {
	var l Log // the zero Log grows
	for range 1000 {
		_, _ = l.Write([]byte("0123456789"))
	}
	if n := len(l.String()); n != 10000 || l.Dropped() != 0 {
		t.Errorf("holds %d bytes, dropped %d: want all 10000", n, l.Dropped())
	}
	if tail := l.Tail(25); tail != "…\n"+strings.Repeat("0123456789", 3)[5:] {
		t.Errorf("Tail(25) of one long line = %q", tail)
	}
}

func TestTail(t *testing.T) {
	l := NewLog(0)
	_, _ = l.Write([]byte("first line\nsecond\nthird\n"))
	for _, tt := range []struct {
		n    int
		want string
	}{
		{100, "first line\nsecond\nthird\n"},
		{15, "…\nsecond\nthird\n"}, // cut inside "first line": starts at the next line
		{13, "…\nsecond\nthird\n"}, // cut at a line start
		{12, "…\nthird\n"},
		{3, "…\nrd\n"}, // within the last line: what fits
	} {
		if got := l.Tail(tt.n); got != tt.want {
			t.Errorf("Tail(%d) = %q, want %q", tt.n, got, tt.want)
		}
	}
}

func TestReadLines(t *testing.T) {
	long := strings.Repeat("x", MaxLineBytes+1000)
	in := "one\r\n\n" + long + "\ntwo\nno newline"
	var lines []string
	l := NewLog(0)
	readLines(strings.NewReader(in), l, func(b []byte) { lines = append(lines, string(b)) })
	want := []string{"one", "", long[:MaxLineBytes], "two", "no newline"}
	if len(lines) != len(want) {
		t.Fatalf("%d lines, want %d", len(lines), len(want))
	}
	for i := range want {
		if lines[i] != want[i] {
			t.Errorf("line %d: %d bytes %.20q, want %d bytes %.20q", i, len(lines[i]), lines[i], len(want[i]), want[i])
		}
	}
	if l.String() != in {
		t.Error("the log differs from the input")
	}
}
