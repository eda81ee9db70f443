// Package relayproc owns running the real relay binary as a child process: it builds
// relay/cmd/blametrail-relay (once per process when asked, with -race and a version stamped in
// by -ldflags), starts it with the command line and environment its caller chooses, keeps its
// output (stdout and stderr, one stream, in order) in a thread-safe log that grows or keeps
// only its tail, hands each line to an optional callback, waits for the "relay listening"
// line and reads the addresses from it (--listen's, and --admin-listen's when set), and stops
// it: SIGTERM with a grace period before SIGKILL, SIGKILL at once, or a wait for it to end by
// itself. On Linux the kernel SIGKILLs every relay started here when the thread that started
// it dies (the parent-death signal), so a crashed test binary or harness never leaves a relay
// behind; KillAll ends the ones still running on an orderly exit.
//
// The test helpers (internal/relaytest, the end-to-end tests' raw helpers) and the benchmark
// harness (internal/bench) are thin layers over it.
//
// It never imports the relay's server package (callers exercise what users run), never picks
// relay flags (the command line is the caller's: the test defaults live in relaytest), never
// talks to the relay's API, and never returns from a failed start with the process still
// running: a relay that did not listen in time is killed and reaped first.
package relayproc
