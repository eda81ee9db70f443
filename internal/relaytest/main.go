package relaytest

import (
	"errors"
	"fmt"
	"os"
	"strings"
)

// StartMain starts a relay shared by a whole test package. It is meant for TestMain, where no
// *testing.T exists: one relay per package keeps runtime down when many tests only need an
// admin API (a relay built with -race takes seconds to build and start).
//
// stop ends the process (SIGTERM), removes the data directory when StartMain created it, and
// returns an error if the relay reported a data race. Failures of the relay's own methods
// (Restart, Do) panic, since there is no test to fail; shared-relay tests use Client.
func StartMain(opts Options) (r *Relay, stop func() error, err error) {
	tmp := ""
	if opts.DataDir == "" {
		if tmp, err = os.MkdirTemp("", "blametrail-relay-data-"); err != nil {
			return nil, nil, err
		}
		opts.DataDir = tmp
	}
	if opts.Token == "" {
		opts.Token = randomToken()
	}
	r = &Relay{t: mainTB{}, opts: opts, Token: opts.Token, IngestToken: opts.IngestToken, DataDir: opts.DataDir}
	stop = func() error {
		r.Stop()
		if tmp != "" {
			_ = os.RemoveAll(tmp)
		}
		if logs := r.Logs(); strings.Contains(logs, "WARNING: DATA RACE") {
			return fmt.Errorf("the relay reported a data race:\n%s", logs)
		}
		return nil
	}
	defer func() {
		v := recover()
		if v == nil {
			return
		}
		f, ok := v.(mainFatal)
		if !ok {
			panic(v)
		}
		_ = stop() // a failed start has already killed the relay
		r, stop, err = nil, nil, f.err
	}()
	r.start()
	return r, stop, nil
}

// mainTB turns the fatal calls that start makes into a panic that StartMain recovers.
type mainTB struct{}

type mainFatal struct{ err error }

func (mainTB) Helper()                           {}
func (mainTB) Fatal(args ...any)                 { panic(mainFatal{errors.New(fmt.Sprint(args...))}) }
func (mainTB) Fatalf(format string, args ...any) { panic(mainFatal{fmt.Errorf(format, args...)}) }
