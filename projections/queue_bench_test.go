package projections_test

import (
	"fmt"
	"runtime"
	"testing"
	"time"

	"github.com/agentcom/agentcom/domain"
	"github.com/agentcom/agentcom/projections"
)

// BenchmarkQueueDepth applies one submission and one assignment of the
// oldest queued task per op, with 1,000 and 100,000 tasks waiting: the
// cost of a dequeue must not grow with the queue.
func BenchmarkQueueDepth(b *testing.B) {
	for _, depth := range []int{1000, 100000} {
		b.Run(fmt.Sprintf("queued=%d", depth), func(b *testing.B) { benchQueueDepth(b, depth) })
	}
}

// BenchmarkQueuedTaskMemory reports the projection's heap per queued task.
func BenchmarkQueuedTaskMemory(b *testing.B) {
	const n = 100000
	for range b.N {
		before := heapNow()
		p, apply := applier(b)
		for i := range n {
			apply(domain.SubmitTask{ID: fmt.Sprintf("t%09d", i), Description: "memory benchmark task"}, nil)
		}
		b.ReportMetric(float64(heapNow()-before)/n, "heap-B/queued-task")
		runtime.KeepAlive(p)
	}
}

func heapNow() uint64 {
	runtime.GC()
	var m runtime.MemStats
	runtime.ReadMemStats(&m)
	return m.HeapAlloc
}

// applier returns a projection and a function that decides a command and
// applies its events in sequence.
func applier(b *testing.B) (*projections.Tasks, func(domain.Command, *domain.Task)) {
	p := projections.NewTasks()
	var seq uint64
	now := time.Unix(1_700_000_000, 0)
	return p, func(cmd domain.Command, cur *domain.Task) {
		evs, err := cmd.Decide(cur, now)
		if err != nil {
			b.Fatal(err)
		}
		for _, ev := range evs {
			seq++
			env := domain.Envelope{ID: fmt.Sprint(seq), Type: ev.EventType(), Version: ev.SchemaVersion(),
				Time: now, Aggregate: cmd.TaskID(), Data: ev, Seq: seq}
			if err := p.Apply(env); err != nil {
				b.Fatal(err)
			}
		}
	}
}

func benchQueueDepth(b *testing.B, depth int) {
	p, apply := applier(b)
	submit := func(i int) { apply(domain.SubmitTask{ID: fmt.Sprintf("t%09d", i), Description: "d"}, nil) }
	for i := range depth {
		submit(i)
	}
	b.ResetTimer()
	for i := range b.N {
		submit(depth + i)
		id := fmt.Sprintf("t%09d", i)
		cur, _, _ := p.Get(id)
		apply(domain.AssignTask{ID: id, AgentID: "a1"}, cur)
	}
}
