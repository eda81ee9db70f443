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

	// commitFlag in a frame's length word marks a commit frame (version 2 segments).
	commitFlag            = 1 << 31
	commitPayloadSize     = 16 // start offset (uint64), chunk CRC (uint32), zero (uint32)
	commitFrameSize       = frameHeaderSize + commitPayloadSize
	commitLengthWord      = commitFlag | commitPayloadSize
	segmentVersion1       = 1
	segmentVersion2       = 2
	segmentVersionCurrent = segmentVersion2
)

var (
	castagnoli    = crc32.MakeTable(crc32.Castagnoli)
	segmentMagic  = [8]byte{'B', 'T', 'W', 'A', 'L', 0, 0, segmentVersionCurrent}
	errBadFrame   = errors.New("bad frame")
	errShortFrame = errors.New("frame runs past the end of the file")
	errZeroFrame  = errors.New("zero length frame")
	errBadPadding = errors.New("non-zero frame padding")
	errBadCommit  = errors.New("bad commit frame")
	errNoCommit   = errors.New("records without a commit frame")
	errCommitGap  = errors.New("commit frame does not start at the end of the previous one")
	errCommitCRC  = errors.New("commit CRC does not match the records it covers")
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

// appendCommitSlot reserves a commit frame at the end of dst; fillCommit completes it once
// the chunk it closes is known.
func appendCommitSlot(dst []byte) []byte {
	var c [commitFrameSize]byte
	binary.LittleEndian.PutUint32(c[0:4], commitLengthWord)
	return append(dst, c[:]...)
}

func isCommit(lengthWord uint32) bool { return lengthWord&commitFlag != 0 }

// chunkChecksum is the CRC a commit frame stores for the chunk bytes it covers.
func chunkChecksum(chunk []byte) uint32 { return crc32.Checksum(chunk, castagnoli) }

// fillCommit writes the commit frame in c (commitFrameSize bytes) for a chunk that starts at
// segment offset start and holds chunk.
func fillCommit(c []byte, start int64, chunk []byte) {
	binary.LittleEndian.PutUint32(c[0:4], commitLengthWord)
	binary.LittleEndian.PutUint64(c[8:16], uint64(start))
	binary.LittleEndian.PutUint32(c[16:20], chunkChecksum(chunk))
	binary.LittleEndian.PutUint32(c[20:24], 0)
	binary.LittleEndian.PutUint32(c[4:8], checksum(c[0:4], c[8:commitFrameSize]))
}

// decodeCommit reads the commit frame at the start of b: where its chunk starts and the
// chunk's CRC. It checks the frame alone, not the chunk.
func decodeCommit(b []byte) (start int64, crc uint32, err error) {
	if len(b) < commitFrameSize {
		return 0, 0, errShortFrame
	}
	if binary.LittleEndian.Uint32(b[0:4]) != commitLengthWord ||
		checksum(b[0:4], b[8:commitFrameSize]) != binary.LittleEndian.Uint32(b[4:8]) ||
		binary.LittleEndian.Uint32(b[20:24]) != 0 {
		return 0, 0, errBadCommit
	}
	s := binary.LittleEndian.Uint64(b[8:16])
	if s > uint64(1)<<62 {
		return 0, 0, errBadCommit
	}
	return int64(s), binary.LittleEndian.Uint32(b[16:20]), nil
}

func segmentHeader(seq uint64) []byte { return segmentHeaderVersion(seq, segmentVersionCurrent) }

func segmentHeaderVersion(seq uint64, version byte) []byte {
	h := make([]byte, segmentHeaderSize)
	copy(h, segmentMagic[:7])
	h[7] = version
	binary.LittleEndian.PutUint64(h[8:], seq)
	return h
}

// segmentVersionOf returns the format version of a segment whose header is b, or 0 when b is
// not a valid header of segment seq.
func segmentVersionOf(b []byte, seq uint64) int {
	if len(b) < segmentHeaderSize || [7]byte(b[:7]) != [7]byte(segmentMagic[:7]) ||
		binary.LittleEndian.Uint64(b[8:16]) != seq {
		return 0
	}
	switch b[7] {
	case segmentVersion1, segmentVersion2:
		return int(b[7])
	}
	return 0
}
