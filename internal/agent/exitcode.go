package agent

// Exit codes of the agent binary. They are a stable contract: scripts depend on them.
const (
	// ExitOK: success; `run` also exits 0 after a SIGTERM/SIGINT drain.
	ExitOK = 0
	// ExitFailure: a fatal runtime failure (the fold store cannot be opened or written and
	// retrying cannot help, an internal error).
	ExitFailure = 1
	// ExitUsage: invalid command line or configuration (unknown flag or command, missing
	// required flag, bad value, unreadable file, listen address not bindable).
	ExitUsage = 2
	// ExitDataProblem: the data directory holds no usable fold (no store, unknown backend)
	// or `verify` found an integrity problem.
	ExitDataProblem = 3
)
