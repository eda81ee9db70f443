package wal

import (
	"bytes"
	"encoding/binary"
	"errors"
	"hash/crc32"
	"testing"
)

func TestFrameRoundTrip(t *testing.T) {
	var sizes []int
	for n := 1; n <= 100; n++ {
		sizes = append(sizes, n)
	}
	sizes = append(sizes, 511, 512, 513, 4096, 1<<20, MaxRecordSize)
	for _, n := range sizes {
		data := payload(1, n)
		// A prefix that is not a multiple of 8 proves appendFrame pads the frame, not dst.
		prefix := []byte("xyz")
		b := appendFrame(bytes.Clone(prefix), data)
		if !bytes.Equal(b[:3], prefix) {
			t.Fatalf("n=%d: appendFrame changed dst's bytes", n)
		}
		frame := b[3:]
		if len(frame)%8 != 0 || len(frame) != frameSize(n) || len(frame)-frameHeaderSize-n > 7 {
			t.Fatalf("n=%d: frame of %d bytes, frameSize %d, want a multiple of 8 with < 8 padding", n, len(frame), frameSize(n))
		}
		if got := binary.LittleEndian.Uint32(frame); got != uint32(n) {
			t.Fatalf("n=%d: length field %d", n, got)
		}
		// Decoding reads one frame and leaves what follows it.
		buf := append(bytes.Clone(frame), appendFrame(nil, []byte("next"))...)
		got, size, err := decodeFrame(buf)
		if err != nil || size != len(frame) || !bytes.Equal(got, data) {
			t.Fatalf("n=%d: decodeFrame = %d bytes, size %d, %v; want %d, %d, nil", n, len(got), size, err, n, len(frame))
		}
		// Every cut short of the whole frame is a short frame.
		for _, cut := range []int{0, 1, 4, 7, 8, len(frame) - 1} {
			if cut < 0 || cut >= len(frame) {
				continue
			}
			if _, _, err := decodeFrame(frame[:cut]); !errors.Is(err, errShortFrame) {
				t.Fatalf("n=%d cut at %d: err %v, want %v", n, cut, err, errShortFrame)
			}
		}
	}
}

func TestFrameCRCCoversLength(t *testing.T) {
	data := payload(2, 13) // 3 bytes of padding
	frame := appendFrame(nil, data)
	// The stored CRC is CRC-32C over the 4 length bytes and then the data, not the data alone.
	want := crc32.Update(crc32.Checksum(frame[:4], crc32.MakeTable(crc32.Castagnoli)), crc32.MakeTable(crc32.Castagnoli), data)
	if got := binary.LittleEndian.Uint32(frame[4:8]); got != want || got == crc32.Checksum(data, castagnoli) {
		t.Fatalf("stored CRC %#x, want %#x over length+data", got, want)
	}
	// Room after the frame so that a longer length still fits: only the CRC can catch it.
	buf := append(bytes.Clone(frame), make([]byte, 64)...)
	for bit := range 32 {
		b := bytes.Clone(buf)
		b[bit/8] ^= 1 << (bit % 8)
		if _, _, err := decodeFrame(b); err == nil {
			t.Fatalf("length bit %d flipped: frame still decodes", bit)
		}
	}
	// Every other single-bit flip in the frame is caught too (padding by its zero check).
	for i := 4; i < len(frame); i++ {
		b := bytes.Clone(frame)
		b[i] ^= 0x10
		if _, _, err := decodeFrame(b); err == nil {
			t.Fatalf("byte %d flipped: frame still decodes", i)
		}
	}
}

func TestFrameBounds(t *testing.T) {
	tests := []struct {
		name string
		b    []byte
		want error
	}{
		{"empty", nil, errShortFrame},
		{"short header", make([]byte, 7), errShortFrame},
		{"zero length", make([]byte, 64), errZeroFrame},
		{"length above MaxRecordSize", header(MaxRecordSize+1, 0), errBadFrame},
		{"length 0xffffffff", header(0xffffffff, 0), errBadFrame},
		{"MaxRecordSize but short", header(MaxRecordSize, 0), errShortFrame},
		{"bad CRC", append(header(8, 0), make([]byte, 8)...), errBadFrame},
		{"non-zero padding", func() []byte { b := appendFrame(nil, []byte{1}); b[12] = 1; return b }(), errBadPadding},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if _, _, err := decodeFrame(tt.b); !errors.Is(err, tt.want) {
				t.Fatalf("decodeFrame: %v, want %v", err, tt.want)
			}
		})
	}

	w, _ := openT(t, opts(t.TempDir()), Position{})
	defer closeT(t, w)
	for _, n := range []int{0, MaxRecordSize + 1} {
		pos, wait := w.Append(make([]byte, n))
		if err := waitT(t, wait); err == nil || pos != (Position{}) {
			t.Fatalf("Append(%d bytes) = %+v, %v; want an error", n, pos, err)
		}
	}
	if err := w.Err(); err != nil {
		t.Fatalf("a refused record failed the log: %v", err)
	}
	big := payload(3, MaxRecordSize)
	got := appendT(t, w, big)
	if b, err := w.ReadAt(got[0].pos); err != nil || !bytes.Equal(b, big) {
		t.Fatalf("ReadAt of a MaxRecordSize record: %d bytes, %v", len(b), err)
	}
}

func header(n, crc uint32) []byte {
	b := make([]byte, 8)
	binary.LittleEndian.PutUint32(b, n)
	binary.LittleEndian.PutUint32(b[4:], crc)
	return b
}
