package protocol

import (
	"encoding/json"
	"fmt"
)

// JSONProblem says in a few words what is wrong with a body that did not
// decode: where the syntax broke, or what was found instead.
func JSONProblem(err error) string {
	switch e := err.(type) {
	case *json.SyntaxError:
		return fmt.Sprintf("syntax error at byte %d", e.Offset)
	case *json.UnmarshalTypeError:
		return "found " + e.Value
	}
	return err.Error()
}
