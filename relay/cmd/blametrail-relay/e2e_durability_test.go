package main_test

// Durability end to end: what the relay acknowledges survives a full disk, a second process
// on the same data dir, damaged files on disk, and what it cannot honour it refuses up front.
// The WAL and snapshot tests are in e2e_durability_wal_test.go.

import (
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/blametrail/terraform-provider-blametrail/internal/api"
	"github.com/blametrail/terraform-provider-blametrail/internal/apiclient"
	"github.com/blametrail/terraform-provider-blametrail/internal/relaytest"
)

// mountTmpfs mounts a tmpfs of size on a new temp dir and unmounts it at cleanup, after the
// relays started later are stopped (cleanups run last in, first out). Without the privilege
// to mount it skips, unless CI is set.
func mountTmpfs(t *testing.T, size string) string {
	t.Helper()
	dir := t.TempDir()
	if out, err := exec.Command("mount", "-t", "tmpfs", "-o", "size="+size, "tmpfs", dir).CombinedOutput(); err != nil {
		msg := fmt.Sprintf("mount a tmpfs on %s: %v: %s", dir, err, out)
		if os.Getenv("CI") != "" {
			t.Fatal(msg)
		}
		t.Skip(msg + " (a failure when CI is set)")
	}
	t.Cleanup(func() {
		if out, err := exec.Command("umount", dir).CombinedOutput(); err != nil {
			_ = exec.Command("umount", "-l", dir).Run()
			t.Errorf("umount %s: %v: %s", dir, err, out)
		}
	})
	return dir
}

// fillDisk writes a file of zeros into dir until only about leave bytes are free on its file
// system, and returns its path.
func fillDisk(t *testing.T, dir string, leave int64) string {
	t.Helper()
	var st syscall.Statfs_t
	if err := syscall.Statfs(dir, &st); err != nil {
		t.Fatal(err)
	}
	n := int64(st.Bavail)*st.Bsize - leave
	path := filepath.Join(dir, "filler")
	f, err := os.Create(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	chunk := make([]byte, 256<<10)
	for n > 0 {
		k, err := f.Write(chunk[:min(int64(len(chunk)), n)])
		n -= int64(k)
		if err != nil {
			t.Fatalf("fill %s: %v", dir, err)
		}
	}
	if err := f.Sync(); err != nil {
		t.Fatal(err)
	}
	return path
}

// postEvent posts one event with idempotency id key and returns the status and event id.
func postEvent(t *testing.T, r *relaytest.Relay, key string, data map[string]any) (int, string, []byte) {
	t.Helper()
	body, err := json.Marshal(map[string]any{"type": api.TypeIncidentOpened, "id": key, "data": data})
	if err != nil {
		t.Fatal(err)
	}
	status, b, _ := r.Do("POST", "/api/events", "application/json", r.Token, body)
	var res api.IngestResult
	_ = json.Unmarshal(b, &res)
	return status, res.ID, b
}

// receivedIDs counts, per event id, the bodies a receiver got.
func receivedIDs(rc *relaytest.Receiver) map[string]int {
	got := map[string]int{}
	for _, req := range rc.Requests() {
		var env struct{ ID string }
		if json.Unmarshal(req.Body, &env) == nil {
			got[env.ID]++
		}
	}
	return got
}

type logLine struct {
	Level, Msg string
	Raw        string
}

// jsonLogs parses the relay's --log-format json output; other lines are skipped.
func jsonLogs(logs string) []logLine {
	var out []logLine
	for _, raw := range strings.Split(logs, "\n") {
		var l logLine
		if json.Unmarshal([]byte(raw), &l) == nil && l.Level != "" {
			l.Raw = raw
			out = append(out, l)
		}
	}
	return out
}

func describeExit(res relaytest.ExitResult) string {
	switch {
	case res.Listening:
		return "started serving (killed)"
	case res.TimedOut:
		return fmt.Sprintf("was still running after %s (killed)", res.Took.Round(time.Millisecond))
	}
	return fmt.Sprintf("exited with status %d after %s", res.Code, res.Took.Round(time.Millisecond))
}

// TestFullDiskNeverAcknowledgesLostEvents: when a WAL write fails for lack of space, the event
// is refused with 503, and nothing afterwards acknowledges it or shows it: not a retry with
// the same idempotency id, not the admin API. Everything acknowledged before survives a crash,
// and once there is room again the refused id is accepted and delivered once.
func TestFullDiskNeverAcknowledgesLostEvents(t *testing.T) {
	mnt := mountTmpfs(t, "8m")
	// One attempt at a time, held by the receiver until the relay is killed: no attempt
	// record competes with the ingests for the last bytes of the disk.
	release := make(chan struct{})
	var once sync.Once
	rc := relaytest.NewReceiver(t, func(w http.ResponseWriter, _ *relaytest.Request) {
		select {
		case <-release:
		case <-time.After(2 * time.Minute):
		}
		w.WriteHeader(http.StatusOK)
	})
	t.Cleanup(func() { once.Do(func() { close(release) }) })
	r := relaytest.Start(t, relaytest.Options{DataDir: filepath.Join(mnt, "data"),
		Args: []string{"--max-in-flight", "1", "--delivery-timeout", "60s"}})
	ep := createEndpoint(t, r, apiclient.EndpointCreate{URL: rc.URL})
	filler := fillDisk(t, mnt, 64<<10)

	pad := strings.Repeat("x", 3000)
	acked := map[string]string{} // idempotency id -> event id, first answers only
	durable := map[string]bool{} // event ids acknowledged before the failure
	failed := ""
	for i := 0; i < 2000 && failed == ""; i++ {
		key := fmt.Sprintf("full-%d", i)
		status, id, body := postEvent(t, r, key, map[string]any{"key": key, "pad": pad})
		switch {
		case status == http.StatusAccepted && id != "":
			acked[key], durable[id] = id, true
		case status == http.StatusServiceUnavailable:
			failed = key
		default:
			t.Fatalf("POST %s = %d %s, want 202 or 503", key, status, body)
		}
	}
	if failed == "" {
		t.Fatal("no ingest answered 503 on a full disk")
	}
	t.Logf("%d events acknowledged, %s answered 503", len(acked), failed)

	everAcked := map[string]string{} // event id -> idempotency id, every 2xx answer
	for k, id := range acked {
		everAcked[id] = k
	}
	status, id, body := postEvent(t, r, failed, map[string]any{"key": failed, "pad": pad})
	if status >= 200 && status < 300 {
		everAcked[id] = failed
		t.Errorf("re-posting id %s after its 503 answered %d %s: it acknowledges event %s, which was never stored", failed, status, body, id)
	}
	// Reads may refuse (503), but must not show what is not durable.
	status, body, _ = r.Do("GET", "/api/webhooks/endpoints/"+ep.ID+"/deliveries?limit="+strconv.Itoa(api.MaxPageLimit), "", r.Token, nil)
	switch status {
	case http.StatusOK:
		var page api.DeliveryList
		if err := json.Unmarshal(body, &page); err != nil {
			t.Fatalf("deliveries: %v: %s", err, body)
		}
		for _, d := range page.Data {
			if !durable[d.EventID] {
				t.Errorf("after the failed write GET deliveries shows %s (%s) for event %s, which was never durably stored", d.ID, d.Status, d.EventID)
			}
		}
	case http.StatusServiceUnavailable:
	default:
		t.Errorf("GET deliveries after the failed write = %d %s, want 200 or 503", status, body)
	}
	status, body, _ = r.Do("GET", "/api/webhooks/endpoints/"+ep.ID, "", r.Token, nil)
	if status != http.StatusOK && status != http.StatusServiceUnavailable {
		t.Errorf("GET endpoint after the failed write = %d %s, want 200 or 503", status, body)
	}

	r.Kill()
	once.Do(func() { close(release) })
	if err := os.Remove(filler); err != nil {
		t.Fatal(err)
	}
	r.Restart()
	deadline := time.Now().Add(waitLong)
	for {
		got := receivedIDs(rc)
		var missing []string
		for id, key := range everAcked {
			if got[id] == 0 {
				missing = append(missing, id+" ("+key+")")
			}
		}
		if len(missing) == 0 {
			break
		}
		if time.Now().After(deadline) {
			t.Errorf("%d of %d acknowledged events never delivered after the restart: %v", len(missing), len(everAcked), missing)
			break
		}
		time.Sleep(20 * time.Millisecond)
	}

	status, id, body = postEvent(t, r, failed, map[string]any{"key": failed, "pad": pad})
	if status != http.StatusAccepted {
		t.Fatalf("POST %s once there is room again = %d %s, want 202", failed, status, body)
	}
	waitDeliveries(t, r, ep.ID, "the re-posted event to be delivered", func(ds []api.Delivery) bool {
		for _, d := range ds {
			if d.EventID == id {
				return d.Status == api.StatusSucceeded
			}
		}
		return false
	})
	n := 0
	for _, req := range rc.Requests() {
		var env struct{ Data struct{ Key string } }
		if json.Unmarshal(req.Body, &env) == nil && env.Data.Key == failed {
			n++
		}
	}
	if n != 1 {
		t.Errorf("the event with id %s reached the receiver %d times, want once", failed, n)
	}
	checkAlive(t, r)
}

// TestSecondRelayOnSameDataDirExits: a data dir belongs to one process. A second relay on it
// exits by itself, naming the dir and the holder's pid, and the first keeps working.
func TestSecondRelayOnSameDataDirExits(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	rc := relaytest.NewReceiver(t, nil)
	a := relaytest.Start(t, relaytest.Options{DataDir: dir})
	ep := createEndpoint(t, a, apiclient.EndpointCreate{URL: rc.URL})
	if _, err := os.Stat(filepath.Join(dir, "LOCK")); err != nil {
		t.Errorf("while relay A runs: %v, want the lock file %s", err, filepath.Join(dir, "LOCK"))
	}

	b := relaytest.RunToExit(t, relaytest.Options{DataDir: dir}, 5*time.Second)
	pid := strconv.Itoa(a.PID())
	if !b.Exited() || b.Code == 0 {
		t.Errorf("a second relay on %s (held by pid %s) %s; want it to exit by itself within 5s with a non-zero status\n%s", dir, pid, describeExit(b), b.Output)
	} else if !strings.Contains(b.Output, dir) || !strings.Contains(b.Output, pid) {
		t.Errorf("the second relay's error should name the data dir %s and the pid %s of the relay holding it:\n%s", dir, pid, b.Output)
	}

	// A is unaffected: it still ingests, delivers and answers the admin API.
	if res := ingest(t, a, api.TypeIncidentOpened, map[string]any{"after": "second relay"}); res.Deliveries != 1 {
		t.Errorf("ingest on relay A after the second relay = %+v, want 1 delivery", res)
	}
	waitFinished(t, a, ep.ID, 1)
	if got := getEndpoint(t, a, ep.ID); got.ID != ep.ID {
		t.Errorf("relay A lost its endpoint: %+v", got)
	}
	checkAlive(t, a)
}

// TestSecondRelayAfterLockFileRemoved: deleting LOCK while a relay runs (a "stale lock
// file" cleanup) does not let a second relay onto its data dir: the two would append to one
// log, and the next start would cut what one of them acknowledged as a torn tail.
func TestSecondRelayAfterLockFileRemoved(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	rc := relaytest.NewReceiver(t, nil)
	a := relaytest.Start(t, relaytest.Options{DataDir: dir})
	ep := createEndpoint(t, a, apiclient.EndpointCreate{URL: rc.URL})
	if err := os.Remove(filepath.Join(dir, "LOCK")); err != nil {
		t.Fatal(err)
	}

	b := relaytest.RunToExit(t, relaytest.Options{DataDir: dir}, 5*time.Second)
	if !b.Exited() || b.Code == 0 {
		t.Errorf("a second relay on %s, whose LOCK was deleted while relay A runs, %s; want it to exit by itself within 5s with a non-zero status\n%s", dir, describeExit(b), b.Output)
	} else if !strings.Contains(b.Output, dir) || !strings.Contains(b.Output, "in use by another process") {
		t.Errorf("the second relay's error should say that %s is in use by another process:\n%s", dir, b.Output)
	}

	if res := ingest(t, a, api.TypeIncidentOpened, map[string]any{"after": "LOCK removed"}); res.Deliveries != 1 {
		t.Errorf("ingest on relay A after the second relay = %+v, want 1 delivery", res)
	}
	waitFinished(t, a, ep.ID, 1)
	checkAlive(t, a)
}

// TestMaxBodySizeCappedToWAL: a body that could not fit one WAL record (16 MiB, with the
// envelope) is refused at start, not at the first large event.
func TestMaxBodySizeCappedToWAL(t *testing.T) {
	t.Parallel()
	for _, v := range []string{"67108864", "15728641"} {
		res := relaytest.RunToExit(t, relaytest.Options{Args: []string{"--max-body-size", v}}, 10*time.Second)
		if !res.Exited() || res.Code == 0 {
			t.Errorf("--max-body-size %s: the relay %s; want it to exit at once with a non-zero status\n%s", v, describeExit(res), res.Output)
		} else if !strings.Contains(res.Output, "--max-body-size") {
			t.Errorf("--max-body-size %s: the error does not name --max-body-size:\n%s", v, res.Output)
		}
	}
	// The cap itself is allowed.
	r := relaytest.Start(t, relaytest.Options{Args: []string{"--max-body-size", "15728640"}})
	checkAlive(t, r)
}

// TestFailedSnapshotRemovesTemp: a snapshot that fails for lack of space leaves no
// snapshot.tmp behind to keep the disk full, and since the WAL itself never failed, ingest
// works again as soon as there is room, without a restart.
func TestFailedSnapshotRemovesTemp(t *testing.T) {
	mnt := mountTmpfs(t, "8m")
	dir := filepath.Join(mnt, "data")
	// A state whose snapshot is a few hundred KiB: idempotency ids are kept in it.
	r := relaytest.Start(t, relaytest.Options{DataDir: dir})
	keyPad := strings.Repeat("k", 180)
	work := make(chan int)
	errs := make(chan error, 8)
	var wg sync.WaitGroup
	for range 8 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := range work {
				if _, err := r.Client.Ingest(testCtx(t), apiclient.Event{Type: api.TypeDeployIngested, ID: fmt.Sprintf("%s-%d", keyPad, i), Data: map[string]any{"i": i}}); err != nil {
					select {
					case errs <- err:
					default:
					}
				}
			}
		}()
	}
	for i := range 1500 {
		work <- i
	}
	close(work)
	wg.Wait()
	close(errs)
	if err := <-errs; err != nil {
		t.Fatalf("ingest: %v", err)
	}
	r.Stop() // writes the snapshot; the next run has nothing new to snapshot until a change
	st, err := os.Stat(filepath.Join(dir, "snapshot"))
	if err != nil {
		t.Fatal(err)
	}
	snapSize := st.Size()

	r2 := relaytest.Start(t, relaytest.Options{DataDir: dir, Args: []string{"--snapshot-interval", "1s"}})
	// A snapshot either fails (ERROR) or, seeing too little free space for it and the WAL,
	// is skipped (WARN): both must leave no temp file and the WAL healthy.
	snapErrors := func() int {
		n := 0
		for _, l := range jsonLogs(r2.Logs()) {
			if (l.Level == "ERROR" || l.Level == "WARN") && strings.Contains(strings.ToLower(l.Raw), "snapshot") {
				n++
			}
		}
		return n
	}
	filler := fillDisk(t, mnt, snapSize/4)
	if status, _, body := postEvent(t, r2, "after-fill", map[string]any{}); status != http.StatusAccepted {
		t.Fatalf("a small ingest on the nearly full disk = %d %s, want 202 (room for the WAL, not for a %d-byte snapshot)", status, body, snapSize)
	}
	relaytest.Eventually(t, waitLong, "a snapshot to fail for lack of space", func() bool { return snapErrors() > 0 })
	if status, body, _ := r2.Do("GET", "/readyz", "", "", nil); status != http.StatusOK {
		t.Fatalf("the WAL failed too (/readyz %d %s): this run cannot tell a snapshot failure apart", status, body)
	}
	// The relay retries every second; between attempts the temp file must be gone.
	tmp := filepath.Join(dir, "snapshot.tmp")
	deadline := time.Now().Add(5 * time.Second)
	for {
		st, err := os.Stat(tmp)
		if errors.Is(err, fs.ErrNotExist) {
			break
		}
		if time.Now().After(deadline) {
			size := int64(-1)
			if st != nil {
				size = st.Size()
			}
			t.Errorf("5s after the failed snapshot %s is still there (%d bytes, err %v), holding the space it took", tmp, size, err)
			break
		}
		time.Sleep(20 * time.Millisecond)
	}
	if status, body, _ := r2.Do("GET", "/readyz", "", "", nil); status != http.StatusOK {
		t.Errorf("/readyz while snapshots fail = %d %s: the WAL must not fail with them", status, body)
	}

	if err := os.Remove(filler); err != nil {
		t.Fatal(err)
	}
	failures := snapErrors()
	written := strings.Count(r2.Logs(), `"msg":"snapshot written"`)
	if status, _, body := postEvent(t, r2, "after-free", map[string]any{}); status != http.StatusAccepted {
		t.Errorf("ingest once there is room again = %d %s, want 202 without a restart", status, body)
	}
	relaytest.Eventually(t, waitLong, "a snapshot to succeed once there is room", func() bool {
		return strings.Count(r2.Logs(), `"msg":"snapshot written"`) > written
	})
	t.Logf("%d ERROR lines about snapshots before room was freed", failures)
	if _, err := os.Stat(tmp); !errors.Is(err, fs.ErrNotExist) {
		t.Errorf("after a successful snapshot %s exists: %v", tmp, err)
	}
	checkAlive(t, r2)
}
