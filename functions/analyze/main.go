// Command analyze is the sheet worker and the refresh Lambda. From the
// analysis queue it takes one sheet of a run at a time: it scans the sheet
// page by page from its checkpoint — detect, attribute, record, write the
// audit rows — for a time slice, queues the rest of a sheet it did not
// finish, and counts a finished sheet; the last sheet of a run announces
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
	lambda.Start(handler{runner: d.Runner, queue: d.Queue, fan: d.Store, pub: d.Publisher, log: d.Log}.handle)
}
