// Command webhook is the Smartsheet webhook Lambda behind the HTTP API
// (POST /webhooks/smartsheet): it answers verification challenges,
// authenticates callbacks (HMAC with the shared secrets in Secrets Manager,
// nonces in DynamoDB), stores the attribution records, queues a targeted
// refresh of the rows on the webhook queue (the analyze function runs it)
// and records status changes with an alert. It never calls Smartsheet.
package main

import (
	"context"
	"encoding/base64"
	"net/http"

	"github.com/aws/aws-lambda-go/events"
	"github.com/aws/aws-lambda-go/lambda"
	"github.com/fieldaudit/billing-audit/shared/aws/lambdaapp"
	"github.com/fieldaudit/billing-audit/shared/config"
	"github.com/fieldaudit/billing-audit/shared/pipeline"
	"github.com/fieldaudit/billing-audit/shared/webhook"
)

type handler struct{ rcv *webhook.Receiver }

// handle translates the HTTP API request into a webhook.Request and the
// receiver's answer back. Bodies arrive base64-encoded when API Gateway
// takes them for binary.
func (h handler) handle(ctx context.Context, req events.APIGatewayV2HTTPRequest) (events.APIGatewayV2HTTPResponse, error) {
	body := []byte(req.Body)
	if req.IsBase64Encoded {
		var err error
		if body, err = base64.StdEncoding.DecodeString(req.Body); err != nil {
			return events.APIGatewayV2HTTPResponse{StatusCode: http.StatusBadRequest, Body: `{"error":"bad request"}`,
				Headers: map[string]string{"Content-Type": "application/json"}}, nil
		}
	}
	res := h.rcv.Handle(ctx, webhook.Request{Headers: req.Headers, Body: body})
	return events.APIGatewayV2HTTPResponse{StatusCode: res.Status, Headers: res.Headers, Body: string(res.Body)}, nil
}

// newReceiver wires the receiver to the cloud adapters.
func newReceiver(app *lambdaapp.App) *webhook.Receiver {
	return &webhook.Receiver{
		Secrets:        webhook.StoredSecrets(app.WebhookSecrets, nil),
		Nonces:         app.WebhookStore,
		Sink:           &pipeline.WebhookSink{Records: app.WebhookStore, Queue: app.RefreshQueue, Meta: app.Store, Logger: app.Log},
		OwnChangeAgent: app.Config.ChangeAgent,
		Logger:         app.Log,
	}
}

func main() {
	app := lambdaapp.Must(lambdaapp.New(context.Background(), false, config.EnvTable, config.EnvWebhookQueueURL, config.EnvWebhookSecrets))
	lambda.Start(handler{newReceiver(app)}.handle)
}
