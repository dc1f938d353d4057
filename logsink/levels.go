package logsink

import (
	"sync"
	"sync/atomic"
)

// Levels are the minimum levels in force: one for every module, changeable
// at run time. A module without a level of its own follows the global one.
// Reading a level is one atomic load on the logger's hot path.
type Levels struct {
	mu      sync.Mutex
	global  Level
	own     map[string]Level         // modules with a level of their own
	handles map[string]*atomic.Int32 // the effective level of each module seen
	lines   [5]atomic.Uint64         // lines written at each level, debug to error
}

// count notes one line written at level.
func (l *Levels) count(level Level) {
	if i := int(level); i >= 0 && i < len(l.lines) {
		l.lines[i].Add(1)
	}
}

// Lines counts the lines written so far at each level, by level name.
func (l *Levels) Lines() map[string]uint64 {
	out := make(map[string]uint64, len(l.lines))
	for lvl, name := range levelNames {
		out[name] = l.lines[int(lvl)].Load()
	}
	return out
}

// NewLevels returns levels with a global level and per-module levels.
func NewLevels(global Level, modules map[string]Level) *Levels {
	l := &Levels{global: global, own: map[string]Level{}, handles: map[string]*atomic.Int32{}}
	for m, lvl := range modules {
		l.own[m] = lvl
	}
	return l
}

// handle returns the effective level of a module, to be loaded atomically.
func (l *Levels) handle(module string) *atomic.Int32 {
	l.mu.Lock()
	defer l.mu.Unlock()
	h, ok := l.handles[module]
	if !ok {
		h = &atomic.Int32{}
		h.Store(int32(l.effective(module)))
		l.handles[module] = h
	}
	return h
}

// effective is a module's level. Lock held.
func (l *Levels) effective(module string) Level {
	if lvl, ok := l.own[module]; ok {
		return lvl
	}
	return l.global
}

// Set changes the global level (module "") or one module's level.
func (l *Levels) Set(module string, level Level) {
	l.mu.Lock()
	defer l.mu.Unlock()
	if module == "" {
		l.global = level
	} else {
		l.own[module] = level
	}
	for m, h := range l.handles {
		h.Store(int32(l.effective(m)))
	}
}

// Get returns the level in force for a module ("" for the global level).
func (l *Levels) Get(module string) Level {
	l.mu.Lock()
	defer l.mu.Unlock()
	if module == "" {
		return l.global
	}
	return l.effective(module)
}

// LevelName returns a level's name.
func LevelName(l Level) string { return levelNames[l] }

// Snapshot returns the global level and every module's own level, by name.
func (l *Levels) Snapshot() (string, map[string]string) {
	l.mu.Lock()
	defer l.mu.Unlock()
	mods := make(map[string]string, len(l.own))
	for m, lvl := range l.own {
		mods[m] = levelNames[lvl]
	}
	return levelNames[l.global], mods
}
