package wal

import (
	"bytes"
	"errors"
	"testing"
)

func FuzzDecodeFrame(f *testing.F) {
	f.Add([]byte{})
	f.Add(make([]byte, 8))
	f.Add(appendFrame(nil, []byte("x")))
	f.Add(appendFrame(nil, bytes.Repeat([]byte("abc"), 100)))
	f.Add(appendFrame(appendFrame(nil, []byte("one")), []byte("two")))
	f.Add(header(MaxRecordSize, 0))
	f.Fuzz(func(t *testing.T, b []byte) {
		data, size, err := decodeFrame(b)
		if err != nil {
			if data != nil || size != 0 {
				t.Fatalf("error %v with %d bytes of data, size %d", err, len(data), size)
			}
			return
		}
		if len(data) == 0 || len(data) > MaxRecordSize || size != frameSize(len(data)) || size > len(b) {
			t.Fatalf("decoded %d bytes, size %d, from %d bytes", len(data), size, len(b))
		}
		if enc := appendFrame(nil, data); !bytes.Equal(enc, b[:size]) {
			t.Fatalf("re-encoding gives %x, frame was %x", enc, b[:size])
		}
	})
}

// FuzzOpen writes arbitrary bytes after a valid header (version 2, or 1 when v1 is set) as the
// only segment. Open never panics; without Repair it succeeds or reports ErrCorrupt; with
// Repair it succeeds, and the log then takes appends that a plain reopen replays.
func FuzzOpen(f *testing.F) {
	var v1 []byte
	for i := range 5 {
		v1 = appendFrame(v1, payload(uint64(i), 1+i*9))
	}
	v2 := segmentHeader(1)
	for i := range 3 {
		v2, _ = chunkBytes(v2, 1, payload(uint64(i), 1+i*9), payload(uint64(i+10), 20))
	}
	v2 = v2[segmentHeaderSize:]
	for _, valid := range [][]byte{v1, v2} {
		isV1 := &valid[0] == &v1[0]
		f.Add(isV1, valid)
		f.Add(isV1, valid[:len(valid)-3])
		f.Add(isV1, append(bytes.Clone(valid), make([]byte, 100)...))
		mid := bytes.Clone(valid)
		mid[20] ^= 1
		f.Add(isV1, mid)
	}
	f.Add(false, []byte{})
	f.Add(false, []byte("garbage that is not a frame at all"))
	f.Fuzz(func(t *testing.T, v1 bool, content []byte) {
		seg := append(segmentHeader(1), content...)
		if v1 {
			seg[7] = segmentVersion1
		}
		o := opts("")
		o.Sync = SyncNone // durability is not under test; keep the fuzzer fast

		o.Dir = t.TempDir()
		writeFileT(t, segPath(o.Dir, 1), seg)
		w, _, err := openCollect(o, Position{})
		if err != nil {
			if !errors.Is(err, ErrCorrupt) {
				t.Fatalf("Open without Repair: %v, want nil or ErrCorrupt", err)
			}
		} else {
			closeT(t, w)
		}

		o.Dir, o.Repair = t.TempDir(), true
		writeFileT(t, segPath(o.Dir, 1), seg)
		w, got, err := openCollect(o, Position{})
		if err != nil {
			t.Fatalf("Open with Repair: %v", err)
		}
		more := appendT(t, w, []byte("appended after recovery"))
		closeT(t, w)
		o.Repair = false
		w, again, err := openCollect(o, Position{})
		if err != nil {
			t.Fatalf("reopen after repair: %v", err)
		}
		defer closeT(t, w)
		sameRecs(t, again, append(got, more...))
	})
}
