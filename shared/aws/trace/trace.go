// Package trace confines AWS X-Ray to one place: it instruments the AWS SDK
// clients and the Smartsheet HTTP client, so that it can later be swapped for
// OpenTelemetry without touching the rest. Without a daemon (locally, under
// the runtime emulator) tracing is a no-op: a missing segment is ignored and
// segments sent over UDP to nowhere are dropped.
package trace

import (
	"net/http"
	"os"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-xray-sdk-go/instrumentation/awsv2"
	"github.com/aws/aws-xray-sdk-go/strategy/ctxmissing"
	"github.com/aws/aws-xray-sdk-go/xray"
)

func init() {
	// Never panic or fail a request because no segment is open (local runs,
	// tests, the runtime emulator).
	if os.Getenv("AWS_XRAY_CONTEXT_MISSING") == "" {
		_ = xray.Configure(xray.Config{ContextMissingStrategy: ctxmissing.NewDefaultIgnoreErrorStrategy()})
	}
}

// AWS instruments every client built from cfg.
func AWS(cfg *aws.Config) {
	awsv2.AWSV2Instrumentor(&cfg.APIOptions)
}

// HTTPClient wraps an HTTP client so each request is a subsegment.
func HTTPClient(c *http.Client) *http.Client {
	if c == nil {
		c = &http.Client{}
	}
	return xray.Client(c)
}
