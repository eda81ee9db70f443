// Package bench is the end-to-end load harness behind relay/cmd/blametrail-bench: it starts
// the real relay binary, fasthttp receivers that verify every delivery's signature, and a
// fasthttp load generator, then reports throughput, latency, CPU, memory, losses and
// duplicates, each beside a baseline measured in the same run (the same client posting the
// same bodies straight to the same receiver) so figures compare across machines.
//
// It owns: the relay processes of a run (started, watched and stopped through
// internal/relayproc, which never leaves one behind; this package reads their logs), receivers,
// load generation, per-event bookkeeping, statistics and the report. It never imports the
// relay's server packages (it measures what users run), never talks to anything but
// 127.0.0.1, and every loop it runs is bounded in count and in time.
package bench
