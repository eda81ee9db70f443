package api

import (
	"bytes"
	"encoding/json"
	"unsafe"
)

// keySpan is a quoted member name in the body, kept while its object is open.
type keySpan struct {
	start, end int32
	escaped    bool
}

// smallObject is how many names an object may hold before its duplicate check uses a set.
const smallObject = 16

// names finds a name twice in one object: the names of the open objects, innermost last.
type names struct {
	b     []byte
	keys  []keySpan
	first [MaxNestingDepth + 1]int32 // first[d]: index in keys of the first name of the object open[d]
	sets  [MaxNestingDepth + 1]map[string]struct{}
}

// open starts the object at open[d].
func (n *names) open(d int) { n.first[d], n.sets[d] = int32(len(n.keys)), nil }

// close ends the object at open[d], forgetting its names.
func (n *names) close(d int) { n.keys, n.sets[d] = n.keys[:n.first[d]], nil }

// add records a name of the object at open[d] and reports false if that object has it already.
func (n *names) add(d int, k keySpan) bool {
	own := n.keys[n.first[d]:]
	switch {
	case n.sets[d] != nil:
	case len(own) < smallObject:
		for _, o := range own {
			if n.equal(o, k) {
				return false
			}
		}
		n.keys = append(n.keys, k)
		return true
	default: // the object outgrew a linear scan: quadratic in a hostile body's names
		n.sets[d] = make(map[string]struct{}, 2*smallObject)
		for _, o := range own {
			n.sets[d][n.name(o)] = struct{}{}
		}
	}
	name := n.name(k)
	if _, dup := n.sets[d][name]; dup {
		return false
	}
	n.sets[d][name] = struct{}{}
	return true
}

func (n *names) equal(a, k keySpan) bool {
	if !a.escaped && !k.escaped {
		return bytes.Equal(n.b[a.start:a.end], n.b[k.start:k.end])
	}
	return n.name(a) == n.name(k)
}

// name unquotes a name; the scan has vouched for its bytes. A name without escapes is a view
// of the body, not a copy: the sets live only while the scan runs, and the body does not
// change under it, so a hostile object of 30,000 names costs no allocation per name.
func (n *names) name(k keySpan) string {
	if !k.escaped {
		return unsafe.String(unsafe.SliceData(n.b[k.start+1:k.end-1]), k.end-1-(k.start+1))
	}
	var s string
	_ = json.Unmarshal(n.b[k.start:k.end], &s)
	return s
}
