package limits

import (
	"testing"
	"time"

	"github.com/stretchr/testify/require"
)

type clock struct{ t time.Time }

func (c *clock) now() time.Time { return c.t }

// The 11th heavy request in a minute is refused with a wait that, when
// honoured, lets the next one through; other callers and tiers are not
// touched.
func TestHeavyTierRefusesTheEleventh(t *testing.T) {
	c := &clock{time.Unix(1_700_000_000, 0)}
	l := New(Defaults, c.now)
	for i := range 10 {
		require.True(t, l.Allow("a1", Heavy).OK, "request %d", i+1)
	}
	d := l.Allow("a1", Heavy)
	require.False(t, d.OK)
	require.Equal(t, 6*time.Second, d.RetryAfter, "a minute's 10, one every 6 s")
	require.Equal(t, 1, d.Report, "the first refusal is reported at once")
	require.True(t, l.Allow("a2", Heavy).OK, "another caller has its own bucket")
	require.True(t, l.Allow("a1", Light).OK, "another tier has its own bucket")
	c.t = c.t.Add(d.RetryAfter - time.Millisecond)
	require.False(t, l.Allow("a1", Heavy).OK, "not before the wait")
	c.t = c.t.Add(time.Millisecond)
	require.True(t, l.Allow("a1", Heavy).OK, "the wait honoured")
}

func TestRefusalReportsAreSpaced(t *testing.T) {
	c := &clock{time.Unix(1_700_000_000, 0)}
	l := New(Limits{Heavy: 1}, c.now)
	require.True(t, l.Allow("x", Heavy).OK)
	reported := 0
	for range 100 {
		reported += l.Allow("x", Heavy).Report
	}
	require.Equal(t, 1, reported, "a flood within a second makes one report")
	c.t = c.t.Add(time.Second)
	require.Equal(t, 100, l.Allow("x", Heavy).Report, "the next one carries the count since")
}

func TestOverridesAndExempt(t *testing.T) {
	c := &clock{time.Unix(1_700_000_000, 0)}
	l := New(Defaults, c.now)
	two := 2
	require.Error(t, Override{}.Check())
	zero := 0
	require.ErrorContains(t, Override{Heavy: &zero}.Check(), "heavy: 0 a minute")
	l.SetOverride("a1", Override{Heavy: &two})
	require.True(t, l.Allow("a1", Heavy).OK)
	require.True(t, l.Allow("a1", Heavy).OK)
	require.False(t, l.Allow("a1", Heavy).OK)
	require.Equal(t, Limits{Light: 120, Normal: 60, Heavy: 2}, l.State().Overrides["a1"])
	require.True(t, l.SetExempt("a1", true))
	for range 50 {
		require.True(t, l.Allow("a1", Heavy).OK)
	}
	require.Equal(t, []string{"a1"}, l.State().Exempt)
	require.True(t, l.SetExempt("a1", false))
	require.True(t, l.ClearOverride("a1"))
	require.False(t, l.ClearOverride("a1"))
	require.Empty(t, l.State().Overrides)
	require.True(t, New(Limits{}, c.now).Allow("any", Heavy).OK, "0: no limit")
}
