// Package lifecycle holds how the hub's parts start and stop: a Gate that
// lets work in until a stop and then waits for it, and Run, which starts
// components in a declared order and stops them in reverse.
package lifecycle
