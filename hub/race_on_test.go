//go:build race

package hub

// raceFactor stretches timing bounds under the race detector, which slows
// everything several times.
const raceFactor = 5
