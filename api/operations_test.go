package api

import (
	"slices"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/agentcom/agentcom/protocol/ops"
)

func TestTransportsRefuseATableWithoutHandlers(t *testing.T) {
	t.Parallel()
	missing := ops.Op{Name: "task.explode", Method: "POST", Path: "/api/tasks/{id}/explode", Access: ops.Admin}
	a := &API{table: append(slices.Clone(ops.All), missing)}
	_, err := a.HTTPHandler()
	require.ErrorContains(t, err, "bind operation task.explode (POST /api/tasks/{id}/explode): no handler")
	_, err = a.ServeNATS(nil)
	require.ErrorContains(t, err, "bind operation task.explode")
	a = &API{table: ops.All[1:]}
	_, err = a.ServeNATS(nil)
	require.ErrorContains(t, err, "bind handler "+ops.All[0].Name+": no such operation")
}
