package bench

import (
	"encoding/json"
	"math"
	"testing"
	"time"
)

func TestEventBodyRoundTrip(t *testing.T) {
	for _, seq := range []int64{0, 7, 123456789} {
		sent := time.Date(2026, 11, 26, 15, 0, 0, 123, time.UTC).UnixNano()
		data := EventData(nil, seq, sent, 1024)
		if len(data) != 1024 {
			t.Errorf("seq %d: data is %d bytes, want 1024", seq, len(data))
		}
		body := EventBody(nil, seq, sent, 1024)
		var in struct {
			Type string `json:"type"`
			Data struct {
				Seq    int64 `json:"seq"`
				SentNS int64 `json:"sent_ns"`
			} `json:"data"`
		}
		if err := json.Unmarshal(body, &in); err != nil {
			t.Fatalf("body is not JSON: %v", err)
		}
		if in.Type != EventType || in.Data.Seq != seq || in.Data.SentNS != sent {
			t.Errorf("decoded %+v", in)
		}
		// As the relay delivers it: its envelope around our data, byte for byte.
		envelope := append(append([]byte(`{"id":"evt_01abc","type":"incident.opened","timestamp":"2026-11-26T15:00:00Z","data":`), data...), '}')
		gotSeq, gotSent, id, ok := parseEventBody(envelope)
		if !ok || gotSeq != seq || gotSent != sent || string(id) != "evt_01abc" {
			t.Errorf("parseEventBody = %d, %d, %q, %v", gotSeq, gotSent, id, ok)
		}
		// As the baseline posts it: no envelope, no event id.
		gotSeq, gotSent, id, ok = parseEventBody(body)
		if !ok || gotSeq != seq || gotSent != sent || id != nil {
			t.Errorf("parseEventBody(baseline) = %d, %d, %q, %v", gotSeq, gotSent, id, ok)
		}
	}
	if _, _, _, ok := parseEventBody([]byte(`{"data":{"other":1}}`)); ok {
		t.Error("a body without seq parsed")
	}
}

func TestParseAck(t *testing.T) {
	id, n, ok := parseAck([]byte(`{"id":"evt_01kabc","deliveries":20}`))
	if !ok || string(id) != "evt_01kabc" || n != 20 {
		t.Errorf("parseAck = %q, %d, %v", id, n, ok)
	}
	if _, _, ok := parseAck([]byte(`{"error":{}}`)); ok {
		t.Error("an error body parsed as an ack")
	}
}

func TestShouldFailIsExact(t *testing.T) {
	for _, rate := range []float64{0.1, 0.25, 1.0 / 3, 0.01} {
		rc := &Receiver{cfg: ReceiverConfig{FailRate: rate}}
		fails := 0
		const n = 10000
		for i := int64(1); i <= n; i++ {
			if rc.shouldFail(i) {
				fails++
			}
		}
		if want := int(math.Floor(n * rate)); fails != want {
			t.Errorf("rate %v: %d of %d failed, want %d", rate, fails, n, want)
		}
	}
	if (&Receiver{}).shouldFail(1) {
		t.Error("rate 0 failed a request")
	}
}

func TestProcParsers(t *testing.T) {
	// A command name with spaces and parentheses, as /proc shows it.
	stat := []byte("4242 (blame trail) (x)) S 1 4242 4242 0 -1 4194560 1000 0 0 0 250 50 0 0 20 0 9 0 100 1000000 2000 18446744073709551615")
	hz, _ := ClockTicks()
	got, err := parseStatCPU(stat)
	if err != nil {
		t.Fatal(err)
	}
	if want := time.Duration(300 * int64(time.Second) / hz); got != want {
		t.Errorf("parseStatCPU = %v, want %v", got, want)
	}
	status := []byte("Name:\trelay\nVmPeak:\t  900 kB\nVmHWM:\t  204800 kB\nVmRSS:\t  102400 kB\nThreads:\t9\n")
	m, err := parseStatusMem(status)
	if err != nil {
		t.Fatal(err)
	}
	if m.RSS != 100<<20 || m.HWM != 200<<20 {
		t.Errorf("parseStatusMem = %+v", m)
	}
	if _, err := parseStatusMem([]byte("Name:\tx\n")); err == nil {
		t.Error("status without VmRSS parsed")
	}
}

func TestArrivalTable(t *testing.T) {
	tb := newArrivalTable(3 * chunkSize)
	// A failure, then its retry succeeds, then an at-least-once duplicate.
	if n := tb.record(chunkSize+5, 11, 22, 100, 150, false); n.first || n.afterFail {
		t.Errorf("first arrival: %+v", n)
	}
	if n := tb.record(chunkSize+5, 11, 22, 100, 170, true); !n.first || !n.afterFail || n.latencyNS != 70 {
		t.Errorf("retry: %+v", n)
	}
	if n := tb.record(chunkSize+5, 11, 22, 100, 190, true); n.first || !n.afterOK {
		t.Errorf("duplicate: %+v", n)
	}
	if n := tb.record(chunkSize+5, 12, 22, 100, 200, true); !n.otherDelivery {
		t.Errorf("second delivery id not noticed: %+v", n)
	}
	a := tb.get(chunkSize + 5)
	if a.arrivals != 4 || a.oks != 3 || a.okAt != 170 {
		t.Errorf("arrival = %+v", a)
	}
	if a := tb.get(0); a.arrivals != 0 {
		t.Errorf("untouched seq: %+v", a)
	}
	if a := tb.get(1 << 40); a.arrivals != 0 {
		t.Errorf("out of range seq: %+v", a)
	}
}
