package relayproc

import (
	"bufio"
	"bytes"
	"errors"
	"io"
	"sync"
)

// MaxLineBytes is the longest line handed to a line callback or searched for the listen
// address; the rest of a longer line is still kept in the Log, but the callback sees it cut.
const MaxLineBytes = 1 << 20

// Log keeps a relay's output. It is safe for concurrent use: the process's reader writes
// while callers read. A Log made with NewLog(0), or the zero Log, grows without bound (tests
// search all of it); NewLog(n) keeps about the last n bytes, cut at a line start, so a relay
// that logs for hours costs its harness bounded memory. One Log may serve several runs of a
// relay in turn (a restart appends).
type Log struct {
	mu      sync.Mutex
	b       []byte
	max     int
	dropped int64
}

// NewLog returns a Log that keeps about the last max bytes, or everything when max <= 0.
func NewLog(max int) *Log { return &Log{max: max} }

// Write appends p. It never fails.
func (l *Log) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.b = append(l.b, p...)
	// Trim only once the buffer is twice the bound, so each byte is copied O(1) times.
	if l.max > 0 && len(l.b) > 2*l.max {
		cut := len(l.b) - l.max
		if l.b[cut-1] != '\n' {
			if i := bytes.IndexByte(l.b[cut:], '\n'); i >= 0 && i < len(l.b)-cut-1 {
				cut += i + 1
			}
		}
		l.dropped += int64(cut)
		l.b = append(l.b[:0:0], l.b[cut:]...)
	}
	return len(p), nil
}

// String returns what the Log holds.
func (l *Log) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return string(l.b)
}

// Tail returns at most the last n bytes, starting at a line when the cut falls inside one.
func (l *Log) Tail(n int) string {
	l.mu.Lock()
	defer l.mu.Unlock()
	if len(l.b) <= n {
		return string(l.b)
	}
	t := l.b[len(l.b)-n:]
	if l.b[len(l.b)-n-1] != '\n' {
		if i := bytes.IndexByte(t, '\n'); i >= 0 && i < len(t)-1 {
			t = t[i+1:]
		}
	}
	return "…\n" + string(t)
}

// Dropped is how many bytes a bounded Log has let go.
func (l *Log) Dropped() int64 {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.dropped
}

// readLines copies rd into log and calls onLine for each line (without its newline, cut at
// MaxLineBytes; a last line without a newline counts too), until rd ends. onLine must not
// keep the slice.
func readLines(rd io.Reader, log *Log, onLine func([]byte)) {
	br := bufio.NewReaderSize(rd, 64<<10)
	var line []byte
	for {
		chunk, err := br.ReadSlice('\n')
		if len(chunk) > 0 {
			_, _ = log.Write(chunk)
			if room := MaxLineBytes - len(line); room > 0 {
				line = append(line, chunk[:min(room, len(chunk))]...)
			}
		}
		if errors.Is(err, bufio.ErrBufferFull) {
			continue
		}
		if len(line) > 0 {
			onLine(bytes.TrimSuffix(bytes.TrimSuffix(line, []byte("\n")), []byte("\r")))
			line = line[:0]
		}
		if err != nil {
			return
		}
	}
}
