package e2e

import (
	. "github.com/onsi/ginkgo/v2"
)

// The scenarios of issue 7, in this order: the last one uninstalls the chart. Each scenario
// uses its own bucket, KVFold and agent port; the NATS outage runs its own nats-server so the
// other folds never see it. ContinueOnFailure: one failed scenario does not skip the others.
var _ = Describe("Slipstream on a one-node cluster", Ordered, ContinueOnFailure, func() {
	describeApply()
	describeRestart()
	describeNATSDown()
	describeCursorExpiry()
	describeInvalid()
	describeRetention()
})
