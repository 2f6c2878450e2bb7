package machine

// Shared with the external e2e tests in this directory.
var (
	RandomWords = randomWords
	RandomEnv   = randomEnv
)
