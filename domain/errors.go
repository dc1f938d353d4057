package domain

import (
	"errors"
	"fmt"
	"strings"
)

// Sentinel errors. Typed errors below match them with errors.Is.
var (
	// ErrNotFound means no task has the given id.
	ErrNotFound = errors.New("not found")
	// ErrInvalidState means the task's status does not allow the command.
	ErrInvalidState = errors.New("invalid state")
	// ErrStaleGeneration means a report names an older assignment of the task.
	ErrStaleGeneration = errors.New("stale generation")
	// ErrWrongAgent means a report comes from an agent that does not hold the task.
	ErrWrongAgent = errors.New("wrong agent")
	// ErrValidation means the command's input is invalid; see ValidationError.
	ErrValidation = errors.New("validation failed")
)

// NotFoundError names the task that does not exist.
type NotFoundError struct{ TaskID string }

func (e *NotFoundError) Error() string        { return fmt.Sprintf("task %s not found", e.TaskID) }
func (e *NotFoundError) Is(target error) bool { return target == ErrNotFound }

// StateError says which command the task's status refused.
type StateError struct {
	TaskID  string
	Status  Status
	Command string
}

func (e *StateError) Error() string {
	return fmt.Sprintf("cannot %s task %s: it is %s", e.Command, e.TaskID, e.Status)
}
func (e *StateError) Is(target error) bool { return target == ErrInvalidState }

// StaleGenerationError says which generation the report named and which is current.
type StaleGenerationError struct {
	TaskID  string
	Got     uint64
	Current uint64
}

func (e *StaleGenerationError) Error() string {
	return fmt.Sprintf("task %s: generation %d is stale, current is %d", e.TaskID, e.Got, e.Current)
}
func (e *StaleGenerationError) Is(target error) bool { return target == ErrStaleGeneration }

// WrongAgentError says which agent reported and which holds the task.
type WrongAgentError struct {
	TaskID string
	Got    string
	Holder string
}

func (e *WrongAgentError) Error() string {
	return fmt.Sprintf("task %s is held by %q, not %q", e.TaskID, e.Holder, e.Got)
}
func (e *WrongAgentError) Is(target error) bool { return target == ErrWrongAgent }

// FieldError is one invalid field: its name (with [i] for list items), a
// short code such as required, wrong_type, too_long or invalid, and a
// sentence for people.
type FieldError struct {
	Field  string `json:"field"`
	Error  string `json:"error"`
	Detail string `json:"detail"`
}

// ValidationError lists every invalid field of a command.
type ValidationError struct{ Fields []FieldError }

func (e *ValidationError) Error() string {
	parts := make([]string, len(e.Fields))
	for i, f := range e.Fields {
		parts[i] = f.Field + ": " + f.Detail
	}
	return "validation failed: " + strings.Join(parts, "; ")
}
func (e *ValidationError) Is(target error) bool { return target == ErrValidation }

// Add records one invalid field.
func (e *ValidationError) Add(field, code, detail string) {
	e.Fields = append(e.Fields, FieldError{Field: field, Error: code, Detail: detail})
}

// Err returns e if it holds any field, else nil.
func (e *ValidationError) Err() error {
	if len(e.Fields) == 0 {
		return nil
	}
	return e
}

// UnknownEventError is a stored event this code cannot read.
type UnknownEventError struct {
	Type    string
	Version int
}

func (e *UnknownEventError) Error() string {
	if e.Version > 0 {
		return fmt.Sprintf("event %s has schema version %d, newer than this build knows", e.Type, e.Version)
	}
	return fmt.Sprintf("unknown event type %q", e.Type)
}
