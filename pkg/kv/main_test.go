package kv_test

import (
	"testing"

	"github.com/slipstream-dev/slipstream/internal/testutil/benchdata"
)

// TestMain removes the benchmark fixtures' nats-server directories when the binary ends.
func TestMain(m *testing.M) { benchdata.Main(m) }
