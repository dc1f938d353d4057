//go:build !race

package broker_test

// raceFactor stretches timing bounds under the race detector (not here).
const raceFactor = 1
