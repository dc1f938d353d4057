//go:build race

package broker_test

// raceFactor stretches timing bounds under the race detector, which slows
// everything several times.
const raceFactor = 5
