// Command report is the report Lambda: on AuditRunCompleted (EventBridge rule
// → SQS) or on demand ({"forceReport":true}, {"runId":"…"}) it verifies the
// audit log (ledger chain, signed digests, every audit row), signs the run's
// digest with the KMS key into the Object Lock bucket, then builds the
// period's workbook from the stored changes, keeps it in S3 and publishes it
// to the audit-log sheet.
package main

import (
	"context"

	"github.com/aws/aws-lambda-go/lambda"
	"github.com/fieldaudit/billing-audit/shared/aws/lambdaapp"
	"github.com/fieldaudit/billing-audit/shared/xlsx"
)

func main() {
	d := lambdaapp.Must(lambdaapp.NewReport(context.Background()))
	lambda.Start(handler{runner: d.Runner, runs: d.Store, workbook: xlsx.Workbook{}, sink: d.Reports,
		anonymize: d.Anonymize, log: d.Log}.handle)
}
