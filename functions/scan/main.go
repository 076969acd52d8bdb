// Command scan is the scheduled scan Lambda: it fetches the rows changed
// since the last scan and queues them for analysis. Invoked by the schedule
// or on demand with {"mode":"test"}, {"forceReport":true} or {"sheetIds":[…]}.
package main

import (
	"context"

	"github.com/aws/aws-lambda-go/lambda"
	"github.com/fieldaudit/billing-audit/shared/aws/lambdaapp"
)

func main() {
	d := lambdaapp.Must(lambdaapp.NewScan(context.Background()))
	lambda.Start(handler{runner: d.Runner, queue: d.Queue, fan: d.Store, pub: d.Publisher, log: d.Log}.handle)
}
