package wal

import "errors"

// ErrHistoryMissing: placeholder until the commit-frame branch lands.
var ErrHistoryMissing = errors.New("wal: history missing")
