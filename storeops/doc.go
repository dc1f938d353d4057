// Package storeops keeps the event store sound around the writer: it
// rebuilds the projections (from the snapshot and the stream) and starts
// the writer on them, saves snapshots, keeps the store mark and checks it
// for loss, watches for a full disk, compacts finished tasks, takes and
// restores backups, and reports store health. The offline operations
// (Replay, Restore, Quarantine, AcceptLoss) work on a stopped hub's data
// directory.
package storeops
