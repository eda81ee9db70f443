package wal

import (
	"encoding/binary"
	"errors"
	"hash/crc32"
)

const (
	frameHeaderSize   = 8
	segmentHeaderSize = 16
	// MaxRecordSize bounds one record; a length above it is damage, not a record.
	MaxRecordSize = 16 << 20
)

var (
	castagnoli    = crc32.MakeTable(crc32.Castagnoli)
	segmentMagic  = [8]byte{'B', 'T', 'W', 'A', 'L', 0, 0, 1}
	errBadFrame   = errors.New("bad frame")
	errShortFrame = errors.New("frame runs past the end of the file")
	errZeroFrame  = errors.New("zero length frame")
	errBadPadding = errors.New("non-zero frame padding")
)

func padded(n int) int { return (n + 7) &^ 7 }

// frameSize is the bytes a record of n bytes takes on disk.
func frameSize(n int) int { return frameHeaderSize + padded(n) }

func checksum(lenBytes []byte, data []byte) uint32 {
	return crc32.Update(crc32.Checksum(lenBytes, castagnoli), castagnoli, data)
}

// appendFrame appends data's frame to dst.
func appendFrame(dst, data []byte) []byte {
	var h [frameHeaderSize]byte
	binary.LittleEndian.PutUint32(h[0:4], uint32(len(data)))
	binary.LittleEndian.PutUint32(h[4:8], checksum(h[0:4], data))
	dst = append(dst, h[:]...)
	dst = append(dst, data...)
	var zero [8]byte
	return append(dst, zero[:padded(len(data))-len(data)]...)
}

// decodeFrame reads the frame at the start of b and returns its data and total size.
func decodeFrame(b []byte) (data []byte, size int, err error) {
	if len(b) < frameHeaderSize {
		return nil, 0, errShortFrame
	}
	n := binary.LittleEndian.Uint32(b[0:4])
	if n == 0 {
		return nil, 0, errZeroFrame
	}
	if n > MaxRecordSize {
		return nil, 0, errBadFrame
	}
	size = frameSize(int(n))
	if size > len(b) {
		return nil, 0, errShortFrame
	}
	data = b[frameHeaderSize : frameHeaderSize+int(n)]
	if checksum(b[0:4], data) != binary.LittleEndian.Uint32(b[4:8]) {
		return nil, 0, errBadFrame
	}
	// The CRC does not cover the padding, so check it is what appendFrame writes: a frame
	// then decodes only if it is exactly the encoding of its data.
	if !allZero(b[frameHeaderSize+int(n) : size]) {
		return nil, 0, errBadPadding
	}
	return data, size, nil
}

func segmentHeader(seq uint64) []byte {
	h := make([]byte, segmentHeaderSize)
	copy(h, segmentMagic[:])
	binary.LittleEndian.PutUint64(h[8:], seq)
	return h
}

func checkSegmentHeader(b []byte, seq uint64) bool {
	return len(b) >= segmentHeaderSize && [8]byte(b[:8]) == segmentMagic &&
		binary.LittleEndian.Uint64(b[8:16]) == seq
}
