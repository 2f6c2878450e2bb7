package pull

import "net/http"

// PolicyTransport wraps base with pull's plain-HTTP policy: http:// requests
// reach only loopback registries unless insecure is set. Other verbs that
// talk to registries (berth push) use it so the rule is the same everywhere.
func PolicyTransport(base http.RoundTripper, insecure bool) http.RoundTripper {
	return &policyTransport{base: base, insecure: insecure}
}
