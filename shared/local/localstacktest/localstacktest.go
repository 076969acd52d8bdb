// Package localstacktest starts the local AWS stack for tests. It is apart
// from localstack so that no release binary links package testing.
package localstacktest

import (
	"context"
	"errors"
	"testing"

	"github.com/fieldaudit/billing-audit/shared/local/localstack"
)

// StartMoto starts moto_server on a free loopback port for the test and
// returns its URL; it stops with the test, and its output is logged when the
// test failed. It skips the test when moto_server is not installed.
func StartMoto(tb testing.TB) string {
	tb.Helper()
	m, err := localstack.RunMoto(context.Background())
	if errors.Is(err, localstack.ErrNoMoto) {
		tb.Skipf("%v: skipping the test that needs the local AWS stack", err)
	}
	if err != nil {
		tb.Fatal(err)
	}
	tb.Cleanup(func() {
		m.Stop()
		if tb.Failed() {
			tb.Logf("moto_server output (last 8 KB):\n%s", m.Logs(8<<10))
		}
	})
	return m.URL
}

// StartDynamoDBLocal starts DynamoDB Local (from moduleRoot's
// infra/dynamodb-local.sh, fetched on first use) on a free loopback port for
// the test and returns its URL; it stops with the test, and its output is
// logged when the test failed. It skips the test when java is not installed.
func StartDynamoDBLocal(tb testing.TB, moduleRoot string) string {
	tb.Helper()
	p, err := localstack.RunDynamoDBLocal(context.Background(), moduleRoot)
	if errors.Is(err, localstack.ErrNoJava) {
		tb.Skipf("%v: skipping the test that needs DynamoDB Local", err)
	}
	if err != nil {
		tb.Fatal(err)
	}
	tb.Cleanup(func() {
		p.Stop()
		if tb.Failed() {
			tb.Logf("DynamoDB Local output (last 8 KB):\n%s", p.Logs(8<<10))
		}
	})
	return p.URL
}
