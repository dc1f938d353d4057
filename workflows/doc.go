// Package workflows holds the work that hangs together: dependencies
// between tasks (a waiting task is released, or cancelled, as its
// dependencies settle), goals that group tasks, periodic schedules that
// submit a task per tick, and idempotency keys that make a repeated
// submit answer the first task. The facts are domain events in the task
// log (task.waiting, task.released, goal.*, schedule.*), so a replay
// shows why a task waited and what released it.
package workflows
