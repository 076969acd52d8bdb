// Command webhook is the Smartsheet webhook Lambda behind the HTTP API
// (POST /webhooks/smartsheet): it answers verification challenges,
// authenticates callbacks (HMAC with the shared secrets in Secrets Manager,
// nonces in DynamoDB), stores the attribution records, queues a targeted
// refresh of the rows on the webhook queue (the analyze function runs it)
// and records status changes with an alert. It never calls Smartsheet.
package main

import (
	"context"

	"github.com/aws/aws-lambda-go/lambda"
	"github.com/fieldaudit/billing-audit/shared/aws/lambdaapp"
)

func main() {
	d := lambdaapp.Must(lambdaapp.NewWebhook(context.Background()))
	lambda.Start(handler{rcv: d.Receiver}.handle)
}
