package main

import (
	"fmt"
	"os"
	"strconv"
	"strings"
	"sync"
	"time"
)

// The multi-second pauses seen when 8 writers provision into a 1M-user
// SQLite store (issue #14) are examined by sampling, every 20 ms during
// the provisioning phases, what the kernel is writing back and how large
// the WAL is; calls over slowCallThreshold are printed, merged into
// pauses, with what the samples show across them.

// walPath is the SQLite store's WAL file, when the store is SQLite.
var walPath string

type ioSample struct {
	at                    time.Time
	dirtyKB, writebackKB  int64
	walBytes              int64
	writeBytes, syscWrite int64 // /proc/self/io: bytes written, write calls
}

type ioSampler struct {
	mu      sync.Mutex
	samples []ioSample
	stop    chan struct{}
	done    chan struct{}
}

func startIOSampler() *ioSampler {
	s := &ioSampler{stop: make(chan struct{}), done: make(chan struct{})}
	go func() {
		defer close(s.done)
		t := time.NewTicker(20 * time.Millisecond)
		defer t.Stop()
		for {
			select {
			case <-s.stop:
				return
			case <-t.C:
			}
			x := ioSample{at: time.Now()}
			if b, err := os.ReadFile("/proc/meminfo"); err == nil {
				for _, line := range strings.Split(string(b), "\n") {
					f := strings.Fields(line)
					if len(f) < 2 {
						continue
					}
					v, _ := strconv.ParseInt(f[1], 10, 64)
					switch f[0] {
					case "Dirty:":
						x.dirtyKB = v
					case "Writeback:":
						x.writebackKB = v
					}
				}
			}
			if b, err := os.ReadFile("/proc/self/io"); err == nil {
				for _, line := range strings.Split(string(b), "\n") {
					f := strings.Fields(line)
					if len(f) == 2 && f[0] == "write_bytes:" {
						x.writeBytes, _ = strconv.ParseInt(f[1], 10, 64)
					}
				}
			}
			if walPath != "" {
				if fi, err := os.Stat(walPath); err == nil {
					x.walBytes = fi.Size()
				}
			}
			s.mu.Lock()
			s.samples = append(s.samples, x)
			s.mu.Unlock()
		}
	}()
	return s
}

func (s *ioSampler) finish() []ioSample {
	close(s.stop)
	<-s.done
	return s.samples
}

// slowCallThreshold is the duration from which a provisioning call is
// examined as part of a pause.
const slowCallThreshold = 250 * time.Millisecond

// slowCall is one provisioning call over slowCallThreshold.
type slowCall struct {
	start time.Time
	took  time.Duration
}

// explain prints, for each slow call (merged when they overlap), what the
// samples across it show.
func explain(calls []slowCall, samples []ioSample) {
	if len(calls) == 0 {
		return
	}
	// Merge overlapping calls into pauses.
	type pause struct{ from, to time.Time }
	var ps []pause
	for _, c := range calls {
		end := c.start.Add(c.took)
		if n := len(ps); n > 0 && !c.start.After(ps[n-1].to) {
			if end.After(ps[n-1].to) {
				ps[n-1].to = end
			}
			continue
		}
		ps = append(ps, pause{c.start, end})
	}
	for _, p := range ps {
		var maxWB, maxDirty, walFrom, walTo, wrFrom, wrTo int64 = 0, 0, -1, 0, -1, 0
		for _, x := range samples {
			if x.at.Before(p.from) || x.at.After(p.to) {
				continue
			}
			maxWB, maxDirty = max(maxWB, x.writebackKB), max(maxDirty, x.dirtyKB)
			if walFrom < 0 {
				walFrom, wrFrom = x.walBytes, x.writeBytes
			}
			walTo, wrTo = x.walBytes, x.writeBytes
		}
		fmt.Printf("  pause %s..%s (%s): kernel Dirty up to %d kB, Writeback up to %d kB; WAL %d -> %d bytes; this process wrote %d kB to disk meanwhile\n",
			p.from.Format("15:04:05.000"), p.to.Format("15:04:05.000"), p.to.Sub(p.from).Round(time.Millisecond),
			maxDirty, maxWB, walFrom, walTo, (wrTo-wrFrom)/1024)
	}
}
