package bench

import (
	"bufio"
	"fmt"
	"os"
	"slices"
	"strconv"
	"strings"
)

// Report is one bench invocation: a result per sync setting.
type Report struct {
	// CPUs is how many the machine has: the figures mean little without.
	CPUs int      `json:"cpus"`
	Runs []Result `json:"runs"`
}

// Result is one run's figures.
type Result struct {
	Mode string `json:"mode"`
	// Sync is the store.sync of the embedded hub and of the raw server
	// (only the raw server's against a running hub).
	Sync string `json:"sync"`
	// Target is "embedded" or the running hub's URL.
	Target     string `json:"target"`
	Workers    int    `json:"workers"`
	Slots      int    `json:"slots"`
	Batch      bool   `json:"batch"`
	Submitters int    `json:"submitters"`
	// Sidecars: the workers were `agentcom sidecar` processes.
	Sidecars  bool    `json:"sidecars,omitempty"`
	Tasks     int     `json:"tasks"` // completed, each submitted by this run
	Seconds   float64 `json:"seconds"`
	TasksPerS float64 `json:"tasks_per_s"`
	// SubmitPerS is, in burn-down mode, the rate of the prefill: submits
	// alone, with no worker connected.
	SubmitPerS float64 `json:"submit_per_s,omitempty"`
	// Latency is submit to assignment push, in ms: every sample in
	// latency mode, queueing included in continuous mode.
	Latency *Latency `json:"latency_ms,omitempty"`
	Raw     *Raw     `json:"raw,omitempty"`
	Memory  *Memory  `json:"memory,omitempty"`
	// Declines (busy), aborts (the hub took a task back) and dropped
	// assignments (an accept or complete refused): 0 in a healthy run.
	Declines int `json:"declines"`
	Aborts   int `json:"aborts"`
	Dropped  int `json:"dropped"`
}

// Latency is a distribution in ms.
type Latency struct {
	Samples int     `json:"samples"`
	P50     float64 `json:"p50"`
	P90     float64 `json:"p90"`
	P99     float64 `json:"p99"`
	Max     float64 `json:"max"`
}

// Raw is JetStream without the hub, on an embedded server with the same
// sync setting: one publish at a time waiting for each ack, and
// asynchronous publishes with at most Window awaiting their acks.
type Raw struct {
	Messages     int     `json:"messages"`
	Bytes        int     `json:"bytes"` // each message's payload
	SyncPerS     float64 `json:"sync_publish_per_s"`
	AsyncPerS    float64 `json:"async_publish_per_s"`
	AsyncWindow  int     `json:"async_window"`
	SyncSeconds  float64 `json:"sync_seconds"`
	AsyncSeconds float64 `json:"async_seconds"`
}

// Memory is a process's, from /proc/<pid>/status, in MiB: resident now
// and at its peak so far, and its threads. A run reports the bench
// process's (hub, workers and all).
type Memory struct {
	RSSMB   float64 `json:"rss_mb"`
	HWMMB   float64 `json:"hwm_mb"`
	Threads int     `json:"threads"`
}

// distribution sorts ms and takes its percentiles; nil when empty.
func distribution(ms []float64) *Latency {
	if len(ms) == 0 {
		return nil
	}
	slices.Sort(ms)
	at := func(p int) float64 { return ms[min(len(ms)-1, len(ms)*p/100)] }
	return &Latency{Samples: len(ms), P50: at(50), P90: at(90), P99: at(99), Max: ms[len(ms)-1]}
}

// ProcessMemory reads the VmRSS, VmHWM and Threads of process pid (0:
// this one); nil where there is no /proc or no such process.
func ProcessMemory(pid int) *Memory {
	path := "/proc/self/status"
	if pid > 0 {
		path = fmt.Sprintf("/proc/%d/status", pid)
	}
	f, err := os.Open(path)
	if err != nil {
		return nil
	}
	defer f.Close()
	var m Memory
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		key, val, ok := strings.Cut(sc.Text(), ":")
		if !ok {
			continue
		}
		switch key {
		case "VmRSS":
			m.RSSMB = kiB(val)
		case "VmHWM":
			m.HWMMB = kiB(val)
		case "Threads":
			m.Threads, _ = strconv.Atoi(strings.TrimSpace(val))
		}
	}
	return &m
}

// kiB turns "  12345 kB" into MiB.
func kiB(s string) float64 {
	n, _ := strconv.ParseFloat(strings.TrimSuffix(strings.TrimSpace(s), " kB"), 64)
	return n / 1024
}
