// Command analyze is the delta-analysis Lambda: for each queued batch it
// detects, attributes and records the changes, writes them to the audit-log
// sheet, and counts the batch; the last batch of a run announces
// AuditRunCompleted. From the webhook queue it takes refresh messages
// ({"kind":"refresh"}) and runs the targeted refresh of those rows. It
// reports partial batch failures, so one bad message is retried (and ends in
// the dead-letter queue) without failing the rest.
package main

import (
	"context"

	"github.com/aws/aws-lambda-go/lambda"
	"github.com/fieldaudit/billing-audit/shared/aws/lambdaapp"
)

func main() {
	d := lambdaapp.Must(lambdaapp.NewAnalyze(context.Background()))
	lambda.Start(handler{runner: d.Runner, blobs: d.Blobs, fan: d.Store, pub: d.Publisher, log: d.Log}.handle)
}
