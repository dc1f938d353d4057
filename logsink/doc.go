// Package logsink is AgentCom's structured logging: one zerolog-based
// logger shared by the hub and the sidecar, writing one JSON object per
// line with the same fields everywhere (time, severity, message, module,
// function, line, pid, node, and agent_id, task_id, request_id when known).
//
// # Levels
//
// Five levels, lowest first: debug (internal state), info (life cycle),
// notice (operational completions such as backups), warning (recoverable
// problems) and error (failures needing attention). They map onto zerolog's
// numeric levels 0..4 and are written under "severity" by name; call sites
// use the methods of Logger, never zerolog's own level methods.
//
// # Form
//
// Messages are short constants. Everything variable is a field:
//
//	log.Info().Str("task_id", id).Msg("task submitted")
package logsink
