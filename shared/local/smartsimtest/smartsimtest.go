// Package smartsimtest starts the Smartsheet simulator for tests. It is
// apart from smartsim so that the CLI, which serves the simulator for `demo`,
// does not link package testing.
package smartsimtest

import (
	"testing"

	"github.com/fieldaudit/billing-audit/shared/local/smartsim"
)

// Start creates a server, listens on a free loopback port and closes it when
// the test ends.
func Start(tb testing.TB, opts smartsim.Options) *smartsim.Server {
	tb.Helper()
	s := smartsim.NewServer(opts)
	if _, err := s.Listen("127.0.0.1:0"); err != nil {
		tb.Fatalf("smartsimtest.Start: %v", err)
	}
	tb.Cleanup(func() { _ = s.Close() })
	return s
}
