package metrics

import "runtime"

// processMetricsSupported: the process collector reads /proc, so Linux (and Windows) only.
func processMetricsSupported() bool { return runtime.GOOS == "linux" || runtime.GOOS == "windows" }
