//go:build !race

package hub

// raceFactor stretches timing bounds under the race detector (not here).
const raceFactor = 1
