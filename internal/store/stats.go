package store

// EndpointStat is one endpoint's figures for the metrics: how many of its deliveries wait
// (pending or held) and whether it is active.
type EndpointStat struct {
	ID     string
	Queued int
	Active bool
}

// EndpointStats appends every endpoint's figures to dst and returns it. It holds the lock for
// one pass over the endpoints (not their deliveries: the counts are kept as records apply), so
// a scrape costs the same with a million deliveries queued as with none.
func (s *Store) EndpointStats(dst []EndpointStat) []EndpointStat {
	s.mu.Lock()
	defer s.mu.Unlock()
	for _, id := range s.order {
		ep := s.endpoints[id]
		dst = append(dst, EndpointStat{ID: ep.ID, Queued: ep.queued, Active: ep.Active})
	}
	return dst
}

// WALBytes is the size of the WAL's segment files on disk (0 for a store without a log).
func (s *Store) WALBytes() int64 {
	if s.wal == nil {
		return 0
	}
	return s.wal.DiskBytes()
}
