// Package wal is the relay's write-ahead log: an append-only sequence of segment files in one
// directory, with group commit, crash recovery and random reads of earlier records.
//
// It owns bytes on disk and their durability, nothing else: it does not know what a record
// means, and it never decides on its own to delete a segment (compaction is its caller's
// decision, made after a snapshot covers what the segment held).
//
// # On-disk format
//
// Segments are named "%016x.wal" after a sequence number that grows by one per segment. Every
// segment starts with a 16-byte header: the magic "BTWAL\x00\x00\x01" and the sequence number
// (uint64, little endian), so a file renamed by hand is detected. Then come records, each an
// 8-byte frame header and the data padded with zeros to a multiple of 8:
//
//	offset 0  uint32 LE  length of data (1 .. MaxRecordSize)
//	offset 4  uint32 LE  CRC-32C (Castagnoli) over the 4 length bytes, then the data
//	offset 8  data, then 0..7 zero bytes of padding
//
// The CRC does not cover the padding; a frame whose padding is not zero is damaged.
//
// Every frame starts at an 8-byte-aligned offset, so a frame header never straddles a sector
// and is never torn on its own.
//
// # Crash assumptions
//
// A write may reach the disk partly (a torn write) and a crash may leave the end of the last
// segment zeroed or with garbage; the file system keeps data for which fsync returned; fsync of
// the directory makes a created, renamed or removed file's name durable. Hence:
//
//   - Only the last segment can have a damaged end: a segment is fsynced whole before the next
//     one is created. A bad frame in the last segment with no valid frame after it is a torn
//     tail: it is truncated at Open, and the number of bytes cut is logged. Its records were
//     never acknowledged, because acknowledgement waits for the fsync that covers them.
//   - A bad frame followed by a valid one, or a bad frame in an earlier segment, is corruption:
//     Open refuses with a *CorruptError naming the file and offset. With Options.Repair, Open
//     keeps a copy of the damaged segment (".damaged-<unix time>"), truncates it at the last
//     good record, and moves later segments aside the same way.
//   - After a failed write or fsync the log is failed for good (ErrFailed): the page cache may
//     already have dropped the dirty pages, so nothing written since the last good fsync can be
//     trusted, and callers must stop acknowledging.
//
// # Sync policies
//
// SyncBatch (the default) is group commit: appends that arrive while a write and fsync are
// under way wait together for the next one, so one fsync covers many records. SyncAlways
// fsyncs after every record. SyncNone writes without fsync: it survives a process crash but
// not power loss, and is for benchmarks only.
package wal
