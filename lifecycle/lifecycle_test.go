package lifecycle

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
)

// recorder notes each start and stop, in order.
type recorder struct{ log []string }

func (r *recorder) step(name string, fail error) Step {
	return Step{Name: name,
		Start: func(context.Context) error { r.log = append(r.log, "start "+name); return fail },
		Stop:  func(context.Context) { r.log = append(r.log, "stop "+name) }}
}

func TestStackStopsInReverse(t *testing.T) {
	var r recorder
	var s Stack
	require.NoError(t, s.Start(context.Background(), r.step("a", nil), r.step("b", nil), Step{Name: "no-op"}, r.step("c", nil)))
	s.Stop(context.Background())
	s.Stop(context.Background()) // twice: nothing more
	require.Equal(t, []string{"start a", "start b", "start c", "stop c", "stop b", "stop a"}, r.log)
}

// TestStackStopsOnlyWhatStarted: a step that failed or never ran is not
// stopped; the error is the step's own.
func TestStackStopsOnlyWhatStarted(t *testing.T) {
	var r recorder
	var s Stack
	boom := errors.New("boom")
	err := s.Start(context.Background(), r.step("a", nil), r.step("b", boom), r.step("c", nil))
	require.ErrorIs(t, err, boom)
	s.Stop(context.Background())
	require.Equal(t, []string{"start a", "start b", "stop a"}, r.log)
	require.Error(t, s.Start(context.Background(), r.step("d", nil)), "a stopped stack starts nothing")
}

// TestGateWaitsForWorkLetIn: Wait returns once the work that entered has
// left; after Close nothing enters.
func TestGateWaitsForWorkLetIn(t *testing.T) {
	var g Gate
	require.True(t, g.Enter())
	release := make(chan struct{})
	go func() { <-release; g.Leave() }()
	g.Close()
	require.False(t, g.Enter())
	waited := make(chan struct{})
	go func() { g.Wait(); close(waited) }()
	select {
	case <-waited:
		t.Fatal("Wait returned while work was in")
	default:
	}
	close(release)
	select {
	case <-waited:
	case <-time.After(10 * time.Second):
		t.Fatal("Wait did not return once the work left")
	}
}
