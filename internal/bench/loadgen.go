package bench

import (
	"bytes"
	"context"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/valyala/fasthttp"

	"github.com/blametrail/terraform-provider-blametrail/relay/signature"
)

// EventType is the type of every event the harness posts.
const EventType = "incident.opened"

// LoadConfig says where and how hard to post.
type LoadConfig struct {
	// Addr is host:port of the target; Path its route ("/api/events" for the relay).
	Addr string
	Path string
	// Token, when set, goes out as "Authorization: Bearer <token>".
	Token string
	// Sign, when set, signs every request as the relay would (delivery id "bench_<seq>"), so a
	// receiver that verifies does the same work with or without the relay in between.
	Sign string
	// Accept is the status that counts as acknowledged: 202 from the relay, 200 from a
	// receiver.
	Accept int
	// WantDeliveries, when positive, is the fan-out every 202 should report.
	WantDeliveries int
	// Clients is the number of concurrent senders, each with its own connection.
	Clients int
	// Duration bounds the run in time and Count in events (0: no count bound). One of them is
	// needed; MaxEvents (the tables' capacity) bounds it in any case.
	Duration time.Duration
	Count    int64
	// Rate, when positive, paces the posts to that many per second in all (open loop: each
	// event has a due time, and its send time is that due time even when the clients fall
	// behind, so queueing in the client counts as latency). 0 posts as fast as the clients go.
	Rate float64
	// DataSize is the size of the event's data object in bytes.
	DataSize int
	// Timeout bounds one request.
	Timeout time.Duration
	// Spans keeps every POST's send and answer times (16 bytes each, whatever the answer) for
	// snapshotIngest.
	Spans bool
}

// LoadResult is what a run of posts produced.
type LoadResult struct {
	Posted    int64         `json:"posted"`
	Acked     int64         `json:"acked"`
	Errors    int64         `json:"transport_errors"`
	Statuses  map[int]int64 `json:"statuses"`
	FanoutBad int64         `json:"fanout_mismatches"` // 202s whose "deliveries" was not WantDeliveries
	Elapsed   time.Duration `json:"-"`
	AckRate   float64       `json:"acked_per_s"`
	AckTime   Latency       `json:"ack_latency"` // POST → answer, as the client saw it
	FirstNS   int64         `json:"-"`
	LastNS    int64         `json:"-"`
	FirstErr  string        `json:"first_error,omitempty"`
	Seqs      int64         `json:"-"` // sequence numbers 0..Seqs-1 were used

	statusMu   sync.Mutex
	samples    [][]int64
	ackSamples []int64 // every POST→answer time, for merging runs (mergeLoads)
	spans      []span  // with LoadConfig.Spans
}

var padding = strings.Repeat("x", 4096)

// EventData builds the data object of event seq sent at sentNS, padded to size bytes:
// {"seq":N,"sent_ns":T,"source":"blametrail-bench","pad":"xxx…"}. seq and sent_ns come first
// so receivers find them without decoding.
func EventData(dst []byte, seq, sentNS int64, size int) []byte {
	start := len(dst)
	dst = append(dst, `{"seq":`...)
	dst = strconv.AppendInt(dst, seq, 10)
	dst = append(dst, `,"sent_ns":`...)
	dst = strconv.AppendInt(dst, sentNS, 10)
	dst = append(dst, `,"source":"blametrail-bench","pad":"`...)
	for pad := size - (len(dst) - start) - len(`"}`); pad > 0; pad -= min(pad, len(padding)) {
		dst = append(dst, padding[:min(pad, len(padding))]...)
	}
	return append(dst, `"}`...)
}

// EventBody is the ingest body {"type":…,"data":{…}}.
func EventBody(dst []byte, seq, sentNS int64, size int) []byte {
	dst = append(dst, `{"type":"`+EventType+`","data":`...)
	dst = EventData(dst, seq, sentNS, size)
	return append(dst, '}')
}

// RunLoad posts events with cfg.Clients concurrent fasthttp clients until the duration
// passes, the count is reached, acks (the table's capacity) is full, or ctx ends. Sequence
// numbers continue from next (so several runs can share one table).
func RunLoad(ctx context.Context, cfg LoadConfig, acks *ackTable, next *atomic.Int64) *LoadResult {
	if cfg.Clients <= 0 {
		cfg.Clients = 1
	}
	if cfg.Timeout <= 0 {
		cfg.Timeout = 30 * time.Second
	}
	if cfg.DataSize <= 0 {
		cfg.DataSize = 1024
	}
	limit := acks.cap()
	if cfg.Count > 0 {
		limit = min(limit, next.Load()+cfg.Count)
	}
	hc := &fasthttp.HostClient{
		Addr:                          cfg.Addr,
		MaxConns:                      cfg.Clients,
		MaxIdleConnDuration:           time.Minute,
		ReadTimeout:                   cfg.Timeout,
		WriteTimeout:                  cfg.Timeout,
		MaxConnWaitTimeout:            cfg.Timeout,
		NoDefaultUserAgentHeader:      true,
		DisableHeaderNamesNormalizing: true,
		RetryIfErr:                    func(*fasthttp.Request, int, error) (bool, bool) { return false, false },
		MaxIdemponentCallAttempts:     1,
	}
	defer hc.CloseIdleConnections()
	res := &LoadResult{Statuses: map[int]int64{}}
	var posted, acked, errs, fanoutBad atomic.Int64
	var firstNS, lastNS atomic.Int64
	start := time.Now()
	var deadline time.Time
	if cfg.Duration > 0 {
		deadline = start.Add(cfg.Duration)
	}
	uri := "http://" + cfg.Addr + cfg.Path
	seq0 := next.Load()
	var wg sync.WaitGroup
	for range cfg.Clients {
		wg.Go(func() {
			req := fasthttp.AcquireRequest()
			resp := fasthttp.AcquireResponse()
			defer fasthttp.ReleaseRequest(req)
			defer fasthttp.ReleaseResponse(resp)
			var signer *signature.Signer
			if cfg.Sign != "" {
				signer, _ = signature.NewSigner(cfg.Sign)
			}
			body := make([]byte, 0, cfg.DataSize+256)
			var idBuf, tsBuf, sigBuf []byte
			samples := make([]int64, 0, 4096)
			var spans []span
			statuses := map[int]int64{}
			var firstErr string
			for ctx.Err() == nil && (deadline.IsZero() || time.Now().Before(deadline)) {
				seq := next.Add(1) - 1
				if seq >= limit {
					break
				}
				req.Reset()
				req.SetRequestURI(uri)
				req.Header.SetMethod(fasthttp.MethodPost)
				req.Header.SetContentType("application/json")
				if cfg.Token != "" {
					req.Header.Set("Authorization", "Bearer "+cfg.Token)
				}
				sent := time.Now()
				if cfg.Rate > 0 {
					due := start.Add(time.Duration(float64(seq-seq0) * float64(time.Second) / cfg.Rate))
					if !deadline.IsZero() && due.After(deadline) {
						break
					}
					if wait := time.Until(due); wait > 0 {
						t := time.NewTimer(wait)
						select {
						case <-t.C:
						case <-ctx.Done():
							t.Stop()
						}
					}
					if ctx.Err() != nil {
						break
					}
					sent = due
				}
				body = EventBody(body[:0], seq, sent.UnixNano(), cfg.DataSize)
				if signer != nil {
					idBuf = strconv.AppendInt(append(idBuf[:0], "bench_"...), seq, 10)
					tsBuf = strconv.AppendInt(tsBuf[:0], sent.Unix(), 10)
					sigBuf = signer.AppendSignature(sigBuf[:0], string(idBuf), sent.Unix(), body)
					req.Header.SetBytesV(signature.HeaderID, idBuf)
					req.Header.SetBytesV(signature.HeaderTimestamp, tsBuf)
					req.Header.SetBytesV(signature.HeaderSignature, sigBuf)
				}
				req.SetBodyRaw(body)
				firstNS.CompareAndSwap(0, sent.UnixNano())
				posted.Add(1)
				err := hc.DoTimeout(req, resp, cfg.Timeout)
				end := time.Now()
				storeMax(&lastNS, end.UnixNano())
				if cfg.Spans {
					spans = append(spans, span{sent.UnixNano(), end.UnixNano()})
				}
				if err != nil {
					errs.Add(1)
					if firstErr == "" {
						firstErr = err.Error()
					}
					continue
				}
				code := resp.StatusCode()
				statuses[code]++
				if code != cfg.Accept {
					if firstErr == "" {
						firstErr = strconv.Itoa(code) + ": " + string(resp.Body())
					}
					continue
				}
				h := uint64(1)
				if cfg.Accept == fasthttp.StatusAccepted {
					id, n, ok := parseAck(resp.Body())
					if ok {
						h = fnv64(id)
					}
					if cfg.WantDeliveries > 0 && n != cfg.WantDeliveries {
						fanoutBad.Add(1)
					}
				}
				acks.set(seq, h)
				acked.Add(1)
				samples = append(samples, end.Sub(sent).Nanoseconds())
			}
			res.statusMu.Lock()
			for k, v := range statuses {
				res.Statuses[k] += v
			}
			if res.FirstErr == "" {
				res.FirstErr = firstErr
			}
			res.samples = append(res.samples, samples)
			res.spans = append(res.spans, spans...)
			res.statusMu.Unlock()
		})
	}
	wg.Wait()
	res.Elapsed = time.Since(start)
	res.Posted, res.Acked, res.Errors, res.FanoutBad = posted.Load(), acked.Load(), errs.Load(), fanoutBad.Load()
	res.FirstNS, res.LastNS = firstNS.Load(), lastNS.Load()
	res.Seqs = min(next.Load(), limit)
	var all []int64
	for _, s := range res.samples {
		all = append(all, s...)
	}
	res.samples = nil
	res.ackSamples = all
	res.AckTime = Summarize(all)
	if res.LastNS > res.FirstNS {
		res.AckRate = Rate(res.Acked, time.Duration(res.LastNS-res.FirstNS))
	}
	return res
}

var (
	ackID         = []byte(`"id":"`)
	ackDeliveries = []byte(`"deliveries":`)
)

// parseAck reads {"id":"evt_…","deliveries":N}.
func parseAck(b []byte) (id []byte, deliveries int, ok bool) {
	i := bytes.Index(b, ackID)
	if i < 0 {
		return nil, 0, false
	}
	rest := b[i+len(ackID):]
	j := bytes.IndexByte(rest, '"')
	if j <= 0 {
		return nil, 0, false
	}
	n, _ := intAfter(b, ackDeliveries)
	return rest[:j], int(n), true
}

func storeMax(a *atomic.Int64, v int64) {
	for {
		old := a.Load()
		if v <= old || a.CompareAndSwap(old, v) {
			return
		}
	}
}
