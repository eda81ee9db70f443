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
// segment starts with a 16-byte header: the magic "BTWAL\x00\x00\x02" (the last byte is the
// format version) and the sequence number (uint64, little endian), so a file renamed by hand
// is detected. Then come frames, each an 8-byte header and a payload padded with zeros to a
// multiple of 8. A data frame holds one record:
//
//	offset 0  uint32 LE  length of data (1 .. MaxRecordSize)
//	offset 4  uint32 LE  CRC-32C (Castagnoli) over the 4 length bytes, then the data
//	offset 8  data, then 0..7 zero bytes of padding
//
// The CRC does not cover the padding; a frame whose padding is not zero is damaged.
//
// Records are written in chunks, and every chunk ends with a commit frame (the high bit of
// its length word marks it; MaxRecordSize never sets that bit):
//
//	offset 0   uint32 LE  0x80000010 (commit flag | payload length 16)
//	offset 4   uint32 LE  CRC-32C over the length word, then the 16 payload bytes
//	offset 8   uint64 LE  segment offset where the chunk starts: the end of the previous
//	                      commit frame, or 16 (the header's end) for the first chunk
//	offset 16  uint32 LE  CRC-32C over the chunk's bytes, from its start to this frame
//	offset 20  uint32     zero
//
// A chunk is what one write covers: with SyncBatch a group-commit batch (a batch that crosses
// into a new segment has one chunk, and one commit frame, per segment), with SyncAlways a
// single record. Commit frames take space in the segment and count in Written; positions
// returned by Append are exact because the space is reserved when the batch is taken.
//
// Every frame starts at an 8-byte-aligned offset, so a frame header never straddles a sector.
//
// Version 1 segments ("BTWAL\x00\x00\x01", no commit frames) are still read under version
// 1's rules (below); when the last segment is version 1, Open starts a new segment for appends,
// so one segment never mixes formats.
//
// # Crash assumptions
//
// The file system keeps data for which fsync returned, and fsync of the directory makes a
// created, renamed or removed file's name durable. At power loss, anything written since the
// last fsync may reach the disk in part and in any order: per 512-byte sector kept, lost,
// zeroed or torn, and the file may keep any size between its synced one and its written one.
// Data already fsynced is not damaged. (internal/crashfs implements exactly this model, and
// the power-loss tests run the log on it.) Hence:
//
//   - Only the last chunk of the last segment can be damaged by a crash: every chunk is fsynced
//     before the next is written (with SyncBatch and SyncAlways), and a segment is fsynced whole
//     before the next one is created.
//   - Replay hands a chunk's records to the caller only after its commit frame checks out: its
//     own CRC, its start equal to the end of the previous commit, and the CRC of the chunk's
//     bytes. At the first chunk that does not check out (a bad frame, a bad commit, or records
//     with no commit at the end of the file): if the segment is the last one and no intact
//     commit frame (one whose chunk CRC matches the bytes it covers) exists after it, it is a
//     torn tail. Open truncates it at the end of the last good commit and logs the bytes cut.
//     Its records were never acknowledged: acknowledgement waits for the fsync after the
//     commit. A power loss therefore never needs Options.Repair.
//   - Damage followed by an intact commit, or damage in an earlier (sealed) segment, is
//     corruption: Open refuses with a *CorruptError naming the file and offset. With
//     Options.Repair, Open keeps a copy of the damaged segment (".damaged-<unix ns>", with
//     "-2"… added if that name is taken), truncates it at the end of the last good commit,
//     and moves later segments aside the same way.
//   - A segment missing from the sequence is corruption too; Repair keeps the segments before
//     the gap and moves the later ones aside, logging how many segments and bytes it moved.
//     When the segment the replay position names is missing but later ones exist, Repair
//     moves those aside and starts a new segment at the position.
//   - A *CorruptError from Open carries in Repair what Options.Repair would do (and its text
//     then suggests --wal-repair); errors Repair cannot fix (a replay position past the end
//     or inside a frame, a damaged record read by ReadAt) carry none.
//   - Open from the zero Position (no snapshot) when the oldest segment is not segment 1
//     fails with ErrHistoryMissing: the state before it is only in the snapshot that allowed
//     its removal.
//   - A last segment that holds only part of its header (created, then power lost before the
//     header's fsync) holds no record: Open writes the header again.
//   - Version 1 segments: a bad frame in the last segment with no valid frame after it is a torn
//     tail; anything else is corruption. (This is why version 2 exists: a group-commit batch
//     whose first sector was lost but whose later frames survived looked like corruption.)
//   - After a failed write or fsync the log is failed for good (ErrFailed): the page cache may
//     already have dropped the dirty pages, so nothing written since the last good fsync can be
//     trusted, and callers must stop acknowledging.
//
// # Sync policies
//
// SyncBatch (the default) is group commit: appends that arrive while a write and fsync are
// under way wait together for the next one, so one fsync covers many records. SyncAlways
// fsyncs after every record. SyncNone writes without fsync (commit frames
// included): it survives a process crash but not power loss, where several unsynced chunks
// can be damaged at once and Open may then find corruption; it is for benchmarks only.
//
// Records appended with AppendLazy (their writer does not wait for them) do not start a write
// of their own: they wait, up to Options.LazyDelay, for a record someone waits for, or a
// Barrier, a Rotate, a Remove that needs the segment sealed, a call of their own wait, or Close;
// then they go in the same chunk and fsync. At low rates that halves the relay's fsyncs (an
// event's attempt record rides with the next event's), at the price of a window of LazyDelay
// in which even a process crash can take such a record back. Under SyncAlways they are
// ordinary appends.
package wal
