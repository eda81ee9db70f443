package crashfs

import (
	"math/rand/v2"
	"slices"
)

// crash returns the content a file has after power loss.
func (ino *inode) crash(rng *rand.Rand) []byte {
	if ino.clean() {
		return slices.Clone(ino.data)
	}
	if rng.IntN(5) == 0 { // the disk had written everything
		return slices.Clone(ino.data)
	}
	d, c := len(ino.durable), len(ino.data)
	size := d
	switch {
	case c > d:
		switch rng.IntN(4) {
		case 0: // the size never reached the disk
		case 1:
			size = d + rng.IntN(c-d+1)
		case 2:
			size = min(c, (d+rng.IntN(c-d+1)+SectorSize-1)/SectorSize*SectorSize)
		default:
			size = c
		}
	case c < d:
		if rng.IntN(2) == 0 {
			size = c
		}
	}
	old := func(i int) byte {
		if i < d {
			return ino.durable[i]
		}
		return 0
	}
	neu := func(i int) byte {
		if i < c {
			return ino.data[i]
		}
		return 0
	}
	out := make([]byte, size)
	copy(out, ino.durable)
	for s := ino.dirtyFrom / SectorSize * SectorSize; s < size; s += SectorSize {
		e := min(s+SectorSize, size)
		mode, tear := rng.IntN(4), s+rng.IntN(e-s+1)
		for i := s; i < e; i++ {
			if i < d && i < c && ino.durable[i] == ino.data[i] {
				continue // synced and not rewritten: never touched
			}
			switch mode {
			case 0: // lost
				out[i] = old(i)
			case 1: // kept
				out[i] = neu(i)
			case 2: // zeroed
				out[i] = 0
			default: // torn
				if i < tear {
					out[i] = neu(i)
				} else {
					out[i] = old(i)
				}
			}
		}
	}
	return out
}
